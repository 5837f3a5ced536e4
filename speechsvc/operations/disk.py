"""The disk guard: what clients send (spool, uploads, stored audio) never fills the data volume.

With --max-disk-bytes the bytes under those folders stay below it; without it, 10 % of the volume stays
free. A body is checked before its first byte is stored (against its declared length) and again every
CHECK_EVERY_BYTES while it streams in (a chunked body declares none). Beyond the budget: 507
insufficient_storage with Retry-After, and the partial file is removed by the caller.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from speechsvc.errors import InsufficientStorage

FREE_SHARE = 0.10  # of the volume, kept free when no --max-disk-bytes is given
CHECK_EVERY_BYTES = 16 * 1024**2


class Usage(NamedTuple):
    total: int
    used: int
    free: int


DiskUsage = Callable[[Path], Usage]


def _disk_usage(path: Path) -> Usage:
    total, used, free = shutil.disk_usage(path)
    return Usage(total, used, free)


def folder_bytes(folders: Sequence[Path]) -> int:
    """Bytes of the files under `folders` (blocking; they hold one file per unfinished job or upload)."""
    size = 0
    for folder in folders:
        for root, _, files in os.walk(folder):
            for name in files:
                try:
                    size += os.stat(os.path.join(root, name)).st_size
                except FileNotFoundError:  # a job finished meanwhile
                    continue
    return size


class DiskGuard:
    """With `stored` (a cluster's shared store), the budget also counts the upload and audio bytes in the
    database, written by every node: --max-disk-bytes bounds the shared store, not one node's folders."""

    def __init__(
        self,
        data_dir: Path,
        folders: Sequence[Path],
        max_bytes: int,
        usage: DiskUsage = _disk_usage,
        stored: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.folders = tuple(folders)
        self.max_bytes = max_bytes
        self.usage = usage
        self.stored = stored

    def check(self, incoming_bytes: int, stored_bytes: int = 0) -> None:
        """Raise InsufficientStorage if `incoming_bytes` more would break the budget (blocking)."""
        if self.max_bytes > 0:
            used = folder_bytes(self.folders) + stored_bytes
            if used + incoming_bytes > self.max_bytes:
                raise InsufficientStorage(
                    f"the server's audio storage is full ({used} of {self.max_bytes} bytes in use); "
                    "retry later"
                )
            return
        disk = self.usage(self.data_dir)
        if disk.free - incoming_bytes < FREE_SHARE * disk.total:
            raise InsufficientStorage(
                f"the server keeps {FREE_SHARE:.0%} of its disk free and has {disk.free} bytes left; retry later"
            )

    async def acheck(self, incoming_bytes: int) -> None:
        stored = await self.stored() if self.stored is not None and self.max_bytes > 0 else 0
        await asyncio.to_thread(self.check, incoming_bytes, stored)


class DiskCheck:
    """Checks the disk guard before a body's first byte and every CHECK_EVERY_BYTES after."""

    def __init__(self, disk: DiskGuard | None) -> None:
        self.disk = disk
        self.next_at = CHECK_EVERY_BYTES

    async def start(self, declared_bytes: int | None) -> None:
        if self.disk is not None:
            await self.disk.acheck(declared_bytes or 0)

    async def progress(self, size: int) -> None:
        if self.disk is not None and size >= self.next_at:
            self.next_at = size + CHECK_EVERY_BYTES
            await self.disk.acheck(0)  # the bytes so far are on disk already
