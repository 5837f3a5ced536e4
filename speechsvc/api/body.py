"""Request bodies go to a spool file, streamed with a byte cap; never read into memory whole."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from aiohttp import web

from speechsvc.errors import MissingBody, PayloadTooLarge
from speechsvc.operations.disk import DiskCheck, DiskGuard

CHUNK_BYTES = 256 * 1024


async def spool_body(request: web.Request, path: Path, max_bytes: int, disk: DiskGuard | None = None) -> int:
    """Stream the body into `path` (fsynced); 413 past max_bytes, 400 if empty, 507 past the disk budget.
    Returns the size."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(f"the body is {request.content_length} bytes; at most {max_bytes} are accepted")
    check = DiskCheck(disk)
    await check.start(request.content_length)
    path.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    try:
        with open(path, "wb") as out:
            async for chunk in request.content.iter_chunked(CHUNK_BYTES):
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(f"the body is larger than the {max_bytes} bytes accepted")
                out.write(chunk)
                await check.progress(size)
            out.flush()
            await asyncio.to_thread(os.fsync, out.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if size == 0:
        path.unlink(missing_ok=True)
        raise MissingBody()
    return size
