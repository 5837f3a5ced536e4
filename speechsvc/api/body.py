"""Request bodies: audio goes to a spool file, streamed with a byte cap, never read into memory whole;
small JSON bodies are read and checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import web

from speechsvc.errors import InvalidRequest
from speechsvc.operations.disk import DiskGuard
from speechsvc.service.spool import Spooled, spool_chunks

CHUNK_BYTES = 256 * 1024


async def spool_request(
    request: web.Request, path: Path, max_bytes: int, disk: DiskGuard | None = None
) -> Spooled:
    """Stream the body into `path` (fsynced); 413 past max_bytes, 400 if empty, 507 past the disk budget."""
    chunks = request.content.iter_chunked(CHUNK_BYTES)
    return await spool_chunks(chunks, path, max_bytes, disk, declared=request.content_length)


async def spool_body(request: web.Request, path: Path, max_bytes: int, disk: DiskGuard | None = None) -> int:
    """spool_request, returning the size."""
    return (await spool_request(request, path, max_bytes, disk)).size


async def read_json(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; 400 for anything else (bad UTF-8, bad JSON, too deep, huge numbers)."""
    try:
        body = json.loads(await request.text())
    # JSONDecodeError, UnicodeDecodeError and a 5000-digit integer are ValueErrors; '[' * 100000 is a
    # RecursionError (the C scanner's recursion guard): all of them are the client's mistake, not a 500
    except (ValueError, RecursionError):
        raise InvalidRequest("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    return body
