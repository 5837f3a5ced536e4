"""One structured line per event: `event=NAME key=value …`, values quoted when they need it."""

from __future__ import annotations

import logging
from typing import Any


def _value(value: Any) -> str:
    text = f"{value:.3f}" if isinstance(value, float) else str(value)
    if not text or any(c in text for c in ' ="\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    logger.log(
        level, " ".join([f"event={event}", *(f"{k}={_value(v)}" for k, v in fields.items() if v is not None)])
    )
