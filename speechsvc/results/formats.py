"""The `format` parameter: `xml` (default), `json`, `srt`, `vtt`, `txt`, with cue controls
such as `srt,max_lines:2,line_char_limit:32`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from speechsvc.errors import InvalidRequest

FORMATS = ("xml", "json", "srt", "vtt", "txt", "html")
DEFAULT_FORMAT = "xml"
CONTENT_TYPES = {
    "xml": "application/xml; charset=utf-8",
    "json": "application/json; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
    "html": "text/html; charset=utf-8",
}
CONTROL_RANGE = (1, 1000)
CUE_FORMATS = ("srt", "vtt")  # the formats that honour max_lines and line_char_limit
# ASCII digits only: str.isdigit() is true for "²", which int() refuses (a 500 before this was written).
_CONTROL_VALUE = re.compile(r"[0-9]{1,4}", re.ASCII)
MAX_FORMAT_CHARS = 200


@dataclass(frozen=True)
class FormatSpec:
    name: str = DEFAULT_FORMAT
    max_lines: int | None = None
    line_char_limit: int | None = None

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.name]

    def __str__(self) -> str:
        controls = [
            f"{k}:{v}"
            for k, v in (("max_lines", self.max_lines), ("line_char_limit", self.line_char_limit))
            if v is not None
        ]
        return ",".join([self.name, *controls])


def parse_format(text: str | None) -> FormatSpec:
    """Parse `name[,control:value…]`; 400 invalid_format on anything else."""
    if text is None or not text.strip():
        return FormatSpec()
    if len(text) > MAX_FORMAT_CHARS:
        raise InvalidRequest(f"format is longer than {MAX_FORMAT_CHARS} characters", param="format")
    name, *controls = [part.strip() for part in text.split(",")]
    name = name.lower()
    if name not in FORMATS:
        raise InvalidRequest(f"format must be one of {', '.join(FORMATS)}", param="format")
    values: dict[str, int] = {}
    for control in controls:
        key, sep, value = control.partition(":")
        if not sep or key not in ("max_lines", "line_char_limit") or not _CONTROL_VALUE.fullmatch(value):
            raise InvalidRequest(
                f"format control {control!r} must be max_lines:N or line_char_limit:N", param="format"
            )
        number = int(value)
        if not CONTROL_RANGE[0] <= number <= CONTROL_RANGE[1]:
            raise InvalidRequest(f"{key} must be between 1 and 1000", param="format")
        values[key] = number
    if values and name not in CUE_FORMATS:
        raise InvalidRequest(
            f"{name} has no cues: max_lines and line_char_limit apply to {' and '.join(CUE_FORMATS)} only",
            param="format",
        )
    return FormatSpec(name, values.get("max_lines"), values.get("line_char_limit"))
