"""Entry point: parse args -> Config -> run. `speechsvc serve | worker | transcribe | models | keys`."""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import logging
import os
import re
import sys
import tempfile
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from speechsvc.access.auth import is_loopback
from speechsvc.access.keys_cli import add_keys_arguments, count_active_keys, run_keys
from speechsvc.app import create_app
from speechsvc.asr.models import ModelRegistry, whisper_loader
from speechsvc.cli import add_transcribe_arguments, transcribe_files
from speechsvc.config import (
    ENV_PREFIX,
    MODELS_FIELDS,
    STORE_FIELDS,
    TRANSCRIBE_FIELDS,
    Config,
    add_config_arguments,
    build_config,
)
from speechsvc.errors import StoreUnavailable
from speechsvc.operations.malloc import limit_arenas

CONFIG_FIELDS = frozenset(field.name for field in dataclasses.fields(Config))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="speechsvc",
        description="Self-hosted speech-to-text for telephony recordings. Every flag can also be set by "
        "the environment variable its help names; flags win.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the HTTP service (with --no-worker: the API only)")
    add_config_arguments(serve)
    worker = commands.add_parser(
        "worker",
        help="run a worker node of a cluster (--database postgresql://…): ops endpoints on --metrics-port",
    )
    add_config_arguments(worker)
    transcribe = commands.add_parser("transcribe", help="transcribe files offline and print the result")
    add_config_arguments(transcribe, only=TRANSCRIBE_FIELDS)
    add_transcribe_arguments(transcribe)
    models = commands.add_parser("models", help="list the models this installation can serve")
    add_config_arguments(models, only=MODELS_FIELDS)
    keys = commands.add_parser("keys", help="create, list or revoke API keys")
    add_config_arguments(keys, only=STORE_FIELDS)
    add_keys_arguments(keys)
    args, extras = parser.parse_known_args(argv)
    if extras:  # a mistyped flag: say which flag of this command was meant
        flags = list(commands.choices[args.command]._option_string_actions)
        hints = [
            f"{given.split('=')[0]}: did you mean {close[0]}?"
            for given in extras
            if given.startswith("-") and (close := difflib.get_close_matches(given.split("=")[0], flags, n=1))
        ]
        parser.error("\n".join([f"unrecognized arguments: {' '.join(extras)}", *hints]))
    return args


def main(argv: list[str] | None = None) -> int:
    limit_arenas()  # before any thread allocates audio (speechsvc.operations.malloc)
    args = parse_args(argv)
    config_fields = {k: v for k, v in vars(args).items() if k in CONFIG_FIELDS}
    try:
        config = build_config(config_fields, os.environ)
    except ValueError as exc:
        print(f"speechsvc: {exc}", file=sys.stderr)
        return 2
    if args.command == "transcribe":
        missing = [str(path) for path in args.files if not path.is_file()]
        if missing:  # before anything is loaded: one line, exit 2
            print(f"speechsvc: no such file: {', '.join(missing)}", file=sys.stderr)
            return 2
    quiet = args.command == "transcribe" and config.log_level != "debug"  # a person reads stderr here
    logging.basicConfig(
        level="WARNING" if quiet else config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command in ("keys", "serve", "worker"):
        try:
            reachable_keys = count_active_keys(config)
        except StoreUnavailable as exc:
            message = _without_passwords(exc.message, config.database_url)
            print(f"speechsvc: {message} ({_safe_url(config.database_url)})", file=sys.stderr)
            return 1
    if args.command == "keys":
        return run_keys(config, args)
    if args.command == "worker":
        app = _startup(lambda: create_app(config, role="worker"))
        if app is None:
            return 2
        print(
            f"speechsvc worker on {_safe_url(config.database_url)}; ops endpoints on "
            f"http://{config.host}:{config.metrics_port} (model {config.model})",
            file=sys.stderr,
        )
        web.run_app(app, host=config.host, port=config.metrics_port, print=None, access_log=None)
        return 0
    if args.command == "serve":
        if not is_loopback(config.host) and not config.no_auth and reachable_keys == 0:
            print(
                f"speechsvc: refusing to listen on {config.host} with no API key: create one with "
                "`speechsvc keys create NAME`, or pass --no-auth to serve without keys",
                file=sys.stderr,
            )
            return 2
        app = _startup(lambda: create_app(config, role="api" if config.no_worker else "all"))
        if app is None:
            return 2
        print(
            f"speechsvc listening on http://{config.host}:{config.port} ("
            + ("API only" if config.no_worker else f"model {config.model}")
            + f", store {_safe_url(config.database_url)})",
            file=sys.stderr,
        )
        web.run_app(app, host=config.host, port=config.port, print=None, access_log=None)
        return 0
    if args.command == "transcribe":
        if config_fields.get("data_dir") is None and ENV_PREFIX + "DATA_DIR" not in os.environ:
            # offline, nothing outlives the run: no ./data in the working directory
            with tempfile.TemporaryDirectory(prefix="speechsvc-") as scratch:
                return transcribe_files(dataclasses.replace(config, data_dir=Path(scratch)), args)
        return transcribe_files(config, args)
    registry = ModelRegistry(config.model, config.model_cache_dir, whisper_loader("cpu", "int8"))
    print(json.dumps(registry.listing(), indent=2))
    return 0


def _startup(build: Callable[[], web.Application]) -> web.Application | None:
    """The app, or None after one line on stderr when a setting cannot be honoured (say, a compute type
    the GPU cannot run)."""
    try:
        return build()
    except ValueError as exc:
        print(f"speechsvc: {exc}", file=sys.stderr)
        return None


def _passwords(url: str) -> list[str]:
    """Every password `url` carries: in its userinfo (`user:pw@`, `:pw@`) or as a `password=` parameter,
    as written and percent-decoded."""
    found: list[str] = []
    userinfo = url.partition("://")[2].split("/", 1)[0].split("?", 1)[0]
    if "@" in userinfo and ":" in userinfo.rpartition("@")[0]:
        found.append(userinfo.rpartition("@")[0].partition(":")[2])
    found += re.findall(r"[?&]password=([^&#]*)", url, flags=re.IGNORECASE)
    return [word for raw in found if raw for word in {raw, urllib.parse.unquote(raw)}]


def _without_passwords(text: str, url: str) -> str:
    for password in sorted(_passwords(url), key=len, reverse=True):
        text = text.replace(password, "***")
    return text


def _safe_url(url: str) -> str:
    """The database URL without its password, for logs and errors: the userinfo's password and any
    `password=` parameter masked; a URL that does not parse is shown as its scheme alone."""
    scheme = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", url)
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return (scheme[0] if scheme else "") + "(malformed URL)"
    user, at, host = parts.netloc.rpartition("@")
    if at and ":" in user:
        user = user.partition(":")[0] + ":***"
    query = re.sub(r"((?:^|&)password=)[^&]*", r"\1***", parts.query, flags=re.IGNORECASE)
    return _without_passwords(
        urllib.parse.urlunsplit(parts._replace(netloc=user + at + host, query=query)), url
    )


if __name__ == "__main__":
    sys.exit(main())
