"""Incoming bytes go to a spool file, streamed with a byte cap and the disk budget; never held in memory
whole. Used for request bodies (speechsvc.api.body) and for audio fetched from a URL (service.remote);
its loop (write_capped) also for form files (speechsvc.api.forms) and upload parts (service.uploads)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from speechsvc.errors import MissingBody, PayloadTooLarge, SpeechsvcError
from speechsvc.operations.disk import DiskCheck, DiskGuard


@dataclass(frozen=True)
class Spooled:
    size: int
    sha256: str  # hex, of the bytes as received


async def spool_chunks(
    chunks: AsyncIterable[bytes],
    path: Path,
    max_bytes: int,
    disk: DiskGuard | None,
    *,
    declared: int | None,
    what: str = "the body",
) -> Spooled:
    """Stream `chunks` into `path` (fsynced): 413 past max_bytes (at once when `declared` is already
    larger), 400 if empty, 507 past the disk budget. `what` names the bytes in the messages."""
    if declared is not None and declared > max_bytes:
        raise PayloadTooLarge(f"{what} is {declared} bytes; at most {max_bytes} are accepted")
    check = DiskCheck(disk)
    await check.start(declared)
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    try:
        with open(path, "wb") as out:
            size = await write_capped(
                chunks,
                out,
                check,
                max_bytes,
                lambda: PayloadTooLarge(f"{what} is larger than the {max_bytes} bytes accepted"),
                digest,
            )
            await synced(out)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if size == 0:
        path.unlink(missing_ok=True)
        raise MissingBody(None if what == "the body" else f"{what} is empty")
    return Spooled(size, digest.hexdigest())


async def write_capped(
    chunks: AsyncIterable[bytes],
    out: BinaryIO,
    check: DiskCheck,
    limit: int,
    too_large: Callable[[], SpeechsvcError],
    digest: Any = None,
) -> int:
    """Write `chunks` to `out` as they come, at most `limit` bytes (`too_large()` is raised past it, while
    streaming), each counted against the disk budget (`check`) and fed to `digest` (a hashlib object) when
    one is given; the bytes written. The one loop behind request bodies, form files and upload parts."""
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise too_large()
        out.write(chunk)
        if digest is not None:
            digest.update(chunk)
        await check.progress(size)
    return size


async def synced(out: BinaryIO) -> None:
    """Flush `out` and fsync it off the event loop."""
    out.flush()
    await asyncio.to_thread(os.fsync, out.fileno())
