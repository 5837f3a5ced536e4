"""One structured line per event: `event=NAME key=value …`, values quoted when they need it."""

from __future__ import annotations

import logging
from typing import Any

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    """A character as it may appear in a log line: control, format and line-separator characters (CR, LF, NUL, ESC,
    bidi overrides, U+2028…) are written as escapes, so a value can never start a forged line or hide text."""
    if char in _ESCAPES:
        return _ESCAPES[char]
    if not char.isprintable() and char != " ":  # Cc, Cf, Zl, Zp…
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
    return char


def _value(value: Any) -> str:
    text = f"{value:.3f}" if isinstance(value, float) else str(value)
    if not text or not all(c.isprintable() and c not in ' ="\\' for c in text):
        return '"' + "".join(_escape(c) for c in text) + '"'
    return text


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    logger.log(
        level, " ".join([f"event={event}", *(f"{k}={_value(v)}" for k, v in fields.items() if v is not None)])
    )
