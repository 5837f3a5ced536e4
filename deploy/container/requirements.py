"""Prints what pyproject.toml's [project] requires, with the extras named (`all`: every optional feature),
one requirement a line, the package's references to its own extras expanded. The image's dependency layer
is keyed on this list, so that an edit elsewhere in pyproject.toml (tests, tools) does not rebuild it.

    python3 requirements.py pyproject.toml all
"""

import re
import sys
from collections.abc import Iterator

import tomllib

with open(sys.argv[1], "rb") as file:
    project = tomllib.load(file)["project"]
extras = project.get("optional-dependencies", {})
own_extras = re.compile(rf"{re.escape(project['name'])}\[(.+)\]")


def expand(names: list[str]) -> Iterator[str]:
    for name in names:
        for requirement in extras[name.strip()]:
            own = own_extras.fullmatch(requirement)
            yield from expand(own.group(1).split(",")) if own else [requirement]


print("\n".join([*project["dependencies"], *expand(sys.argv[2:])]))
