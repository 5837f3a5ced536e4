"""Resumable uploads (API.md §4, seed 000): rows in the job store's SQLite file, bytes in <data>/uploads."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from speechsvc.jobs.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads (
    id             TEXT PRIMARY KEY,
    file_name      TEXT NOT NULL,
    mime_type      TEXT NOT NULL,
    size_bytes     INTEGER NOT NULL,
    received_bytes INTEGER NOT NULL DEFAULT 0,
    state          TEXT NOT NULL,
    token_sha256   TEXT NOT NULL,
    sha256         TEXT,
    path           TEXT NOT NULL,
    created_at     REAL NOT NULL,
    expires_at     REAL NOT NULL,
    completed_at   REAL,
    owner          TEXT
);
CREATE INDEX IF NOT EXISTS uploads_by_expiry ON uploads (state, expires_at);
"""


class UploadState(str, Enum):
    PENDING = "pending"  # created, no bytes yet
    UPLOADING = "uploading"  # some bytes received
    COMPLETED = "completed"  # every byte received, checked, probed
    EXPIRED = "expired"  # past expires_at; its bytes are deleted


@dataclass(frozen=True)
class Upload:
    id: str
    file_name: str
    mime_type: str
    size_bytes: int
    received_bytes: int
    state: UploadState
    token_sha256: str
    sha256: str | None
    path: Path
    created_at: float
    expires_at: float
    completed_at: float | None
    owner: str | None = None  # the API key id that created it ("local" with auth off)

    @classmethod
    def from_row(cls, row: Any) -> Upload:
        return cls(**{**dict(row), "state": UploadState(row["state"]), "path": Path(row["path"])})


class UploadStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def create(self, upload: Upload) -> None:
        await self.store._write(
            "INSERT INTO uploads (id, file_name, mime_type, size_bytes, state, token_sha256, path, created_at,"
            " expires_at, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                upload.id,
                upload.file_name,
                upload.mime_type,
                upload.size_bytes,
                upload.state.value,
                upload.token_sha256,
                str(upload.path),
                upload.created_at,
                upload.expires_at,
                upload.owner,
            ),
        )

    async def get(self, upload_id: str) -> Upload | None:
        rows = await self.store._fetch("SELECT * FROM uploads WHERE id = ?", (upload_id,))
        return Upload.from_row(rows[0]) if rows else None

    async def set_received(self, upload_id: str, received_bytes: int) -> None:
        """Record the bytes received so far (a whole-file PUT may lower it)."""
        await self.store._write(
            "UPDATE uploads SET received_bytes = ?, state = ? WHERE id = ? AND state IN (?, ?)",
            (
                received_bytes,
                UploadState.UPLOADING.value,
                upload_id,
                UploadState.PENDING.value,
                UploadState.UPLOADING.value,
            ),
        )

    async def complete(self, upload_id: str, sha256: str) -> None:
        await self.store._write(
            "UPDATE uploads SET state = ?, sha256 = ?, completed_at = ? WHERE id = ?",
            (UploadState.COMPLETED.value, sha256, time.time(), upload_id),
        )

    async def expire_before(self, now: float) -> list[Upload]:
        """Mark uploads past their expiry as expired; returns them (their files are the caller's)."""
        rows = await self.store._fetch(
            "UPDATE uploads SET state = ? WHERE state != ? AND expires_at < ? RETURNING *",
            (UploadState.EXPIRED.value, UploadState.EXPIRED.value, now),
            commit=True,
        )
        return [Upload.from_row(row) for row in rows]
