"""File helpers the stores share: durable moves and hashing (blocking; run them in a thread)."""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path


def commit_file(source: Path, target: Path) -> None:
    """Move a spooled file to its final place durably (rename, then fsync the directory)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def folder_size(*folders: Path) -> int:
    """Bytes of the files directly in `folders` (blocking)."""
    size = 0
    for folder in folders:
        for path in folder.glob("*") if folder.is_dir() else ():
            with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                size += path.stat().st_size
    return size
