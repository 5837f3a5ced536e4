"""The durable job store: one SQLite file (WAL, synchronous=FULL) through aiosqlite."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from speechsvc.jobs.model import JobRequest, JobStatus

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id                  TEXT PRIMARY KEY,
    status              TEXT NOT NULL,
    created_at          REAL NOT NULL,
    updated_at          REAL NOT NULL,
    finished_at         REAL,
    media_type          TEXT NOT NULL,
    audio_path          TEXT NOT NULL,
    audio_bytes         INTEGER NOT NULL,
    request             TEXT NOT NULL,
    progress            REAL NOT NULL DEFAULT 0,
    error               TEXT,
    result              TEXT,
    attempts            INTEGER NOT NULL DEFAULT 0,
    lease_expires_at    REAL,
    callback_started_at REAL,
    callback_outcome    TEXT,
    owner               TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created_at);
CREATE INDEX IF NOT EXISTS jobs_by_finish ON jobs (finished_at);
CREATE TABLE IF NOT EXISTS api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    key_sha256   TEXT NOT NULL UNIQUE,
    created_at   REAL NOT NULL,
    last_used_at REAL,
    revoked_at   REAL,
    scope        TEXT NOT NULL DEFAULT 'tenant'
);
"""
# Columns added after the first release: (table, column, declaration), added to older files at open.
MIGRATIONS = (
    ("jobs", "owner", "TEXT"),
    ("api_keys", "scope", "TEXT NOT NULL DEFAULT 'tenant'"),
    ("uploads", "owner", "TEXT"),
    ("webhooks", "owner", "TEXT"),
)
POST_MIGRATION = "CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, status);"
UNFINISHED = (JobStatus.RECEIVED.value, JobStatus.QUEUED.value, JobStatus.PENDING.value)
INTERRUPTED_CALLBACK = "callback attempt interrupted by a restart; not retried (at most one attempt)"


@dataclass(frozen=True)
class Job:
    id: str
    status: JobStatus
    created_at: float
    updated_at: float
    finished_at: float | None
    media_type: str
    audio_path: Path
    audio_bytes: int
    request: JobRequest
    progress: float
    error: str | None
    result: dict[str, Any] | None
    attempts: int
    callback_started_at: float | None
    callback_outcome: dict[str, Any] | None
    owner: str | None = None  # the API key id that submitted it ("local" with auth off)

    @classmethod
    def from_row(cls, row: aiosqlite.Row) -> Job:
        return cls(
            id=row["id"],
            status=JobStatus(row["status"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            finished_at=row["finished_at"],
            media_type=row["media_type"],
            audio_path=Path(row["audio_path"]),
            audio_bytes=row["audio_bytes"],
            request=JobRequest.from_json(json.loads(row["request"])),
            progress=row["progress"],
            error=row["error"],
            result=json.loads(row["result"]) if row["result"] else None,
            attempts=row["attempts"],
            callback_started_at=row["callback_started_at"],
            callback_outcome=json.loads(row["callback_outcome"]) if row["callback_outcome"] else None,
            owner=row["owner"],
        )


class Store:
    """All job state lives here; every write is committed before the caller goes on.

    One connection is shared by the handlers and the workers, so each operation (statements, fetch,
    commit) holds a lock: otherwise a commit can land while another coroutine's statement is still
    open ("cannot commit transaction - SQL statements in progress") or commit someone else's write.
    """

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db
        self.lock = asyncio.Lock()

    async def _write(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        async with self.lock:
            cursor = await self.db.execute(sql, params)
            await self.db.commit()
            return cursor.rowcount

    async def _fetch(
        self, sql: str, params: tuple[Any, ...] = (), *, commit: bool = False
    ) -> list[aiosqlite.Row]:
        async with self.lock:
            async with self.db.execute(sql, params) as cursor:
                rows = list(await cursor.fetchall())
            if commit:
                await self.db.commit()
            return rows

    async def insert(
        self,
        job_id: str,
        media_type: str,
        audio_path: Path,
        audio_bytes: int,
        request: JobRequest,
        status: JobStatus = JobStatus.QUEUED,
        owner: str | None = None,
    ) -> None:
        now = time.time()
        await self._write(
            "INSERT INTO jobs (id, status, created_at, updated_at, media_type, audio_path, audio_bytes, request,"
            " owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job_id,
                status.value,
                now,
                now,
                media_type,
                str(audio_path),
                audio_bytes,
                json.dumps(request.to_json()),
                owner,
            ),
        )

    async def get(self, job_id: str) -> Job | None:
        rows = await self._fetch("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return Job.from_row(rows[0]) if rows else None

    async def delete(self, job_id: str) -> Job | None:
        """Remove the job; a worker running it sees the row gone at its next progress update."""
        rows = await self._fetch("DELETE FROM jobs WHERE id = ? RETURNING *", (job_id,), commit=True)
        return Job.from_row(rows[0]) if rows else None

    async def claim(self, lease_s: float) -> Job | None:
        """Take the oldest Queued job (or a Pending one whose lease ran out) and mark it Pending."""
        now = time.time()
        rows = await self._fetch(
            "UPDATE jobs SET status = ?, attempts = attempts + 1, lease_expires_at = ?, updated_at = ?"
            " WHERE id = (SELECT id FROM jobs WHERE status = ? OR (status = ? AND lease_expires_at < ?)"
            "             ORDER BY created_at LIMIT 1)"
            " RETURNING *",
            (
                JobStatus.PENDING.value,
                now + lease_s,
                now,
                JobStatus.QUEUED.value,
                JobStatus.PENDING.value,
                now,
            ),
            commit=True,
        )
        return Job.from_row(rows[0]) if rows else None

    async def update_progress(self, job_id: str, progress: float, lease_s: float) -> bool:
        """Record progress and renew the lease; False if the job is gone or no longer Pending."""
        now = time.time()
        changed = await self._write(
            "UPDATE jobs SET progress = ?, lease_expires_at = ?, updated_at = ? WHERE id = ? AND status = ?",
            (progress, now + lease_s, now, job_id, JobStatus.PENDING.value),
        )
        return changed == 1

    async def complete(self, job_id: str, result: dict[str, Any], *, has_callback: bool) -> bool:
        """Store the result: Ready if a callback is still to be made, else Completed."""
        status = JobStatus.READY if has_callback else JobStatus.COMPLETED
        now = time.time()
        changed = await self._write(
            "UPDATE jobs SET status = ?, result = ?, progress = 100, lease_expires_at = NULL,"
            " updated_at = ?, finished_at = ? WHERE id = ? AND status = ?",
            (status.value, json.dumps(result), now, now, job_id, JobStatus.PENDING.value),
        )
        return changed == 1

    async def fail(self, job_id: str, error: str) -> bool:
        now = time.time()
        changed = await self._write(
            "UPDATE jobs SET status = ?, error = ?, lease_expires_at = NULL, updated_at = ?, finished_at = ?"
            " WHERE id = ? AND status IN (?, ?, ?)",
            (JobStatus.FAILED.value, error, now, now, job_id, *UNFINISHED),
        )
        return changed == 1

    async def cancel(self, job_id: str) -> Job | None:
        """Queued or running -> Canceled (a running job stops at its next progress write). None if finished."""
        now = time.time()
        rows = await self._fetch(
            "UPDATE jobs SET status = ?, lease_expires_at = NULL, updated_at = ?, finished_at = ?"
            " WHERE id = ? AND status IN (?, ?, ?) RETURNING *",
            (JobStatus.CANCELED.value, now, now, job_id, *UNFINISHED),
            commit=True,
        )
        return Job.from_row(rows[0]) if rows else None

    async def mark_callback_started(self, job_id: str) -> bool:
        """Claim the one callback attempt. Committed before sending, so a crash never causes a second."""
        changed = await self._write(
            "UPDATE jobs SET callback_started_at = ? WHERE id = ? AND callback_started_at IS NULL",
            (time.time(), job_id),
        )
        return changed == 1

    async def finish_callback(self, job_id: str, outcome: dict[str, Any]) -> None:
        """Store the attempt's outcome; a Ready job becomes Completed."""
        await self._write(
            "UPDATE jobs SET callback_outcome = ?, updated_at = ?,"
            " status = CASE status WHEN ? THEN ? ELSE status END WHERE id = ?",
            (json.dumps(outcome), time.time(), JobStatus.READY.value, JobStatus.COMPLETED.value, job_id),
        )

    async def recover(self) -> list[Job]:
        """At start-up: hand back jobs a previous process left running, and close interrupted callbacks.

        Returns the finished jobs whose callback has not been attempted yet.
        """
        now = time.time()
        interrupted = {"url": None, "attempted_at": None, "http_status": None, "error": INTERRUPTED_CALLBACK}
        async with self.lock:
            await self.db.execute(
                "UPDATE jobs SET status = ?, lease_expires_at = NULL, progress = 0, updated_at = ?"
                " WHERE status IN (?, ?)",
                (JobStatus.QUEUED.value, now, JobStatus.PENDING.value, JobStatus.RECEIVED.value),
            )
            await self.db.execute(
                "UPDATE jobs SET status = ?, callback_outcome = ?, updated_at = ?"
                " WHERE status = ? AND callback_started_at IS NOT NULL",
                (JobStatus.COMPLETED.value, json.dumps(interrupted), now, JobStatus.READY.value),
            )
            await self.db.commit()
        rows = await self._fetch(
            "SELECT * FROM jobs WHERE callback_started_at IS NULL AND json_extract(request, '$.callback_url')"
            " IS NOT NULL AND status IN (?, ?) ORDER BY finished_at",
            (JobStatus.READY.value, JobStatus.FAILED.value),
        )
        return [Job.from_row(row) for row in rows]

    async def count_by_status(self) -> dict[str, int]:
        rows = await self._fetch("SELECT status, COUNT(*) FROM jobs GROUP BY status")
        return {row[0]: row[1] for row in rows}

    async def count_status(self, status: JobStatus, owner: str | None = None) -> int:
        """Jobs in `status`; only `owner`'s when given."""
        if owner is None:
            rows = await self._fetch("SELECT COUNT(*) FROM jobs WHERE status = ?", (status.value,))
        else:
            rows = await self._fetch(
                "SELECT COUNT(*) FROM jobs WHERE status = ? AND owner = ?", (status.value, owner)
            )
        return int(rows[0][0])

    async def delete_finished_before(self, cutoff: float) -> list[Job]:
        """Retention: remove jobs that finished before `cutoff`; returns them (their audio is the caller's)."""
        rows = await self._fetch(
            "DELETE FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ? AND status IN (?, ?, ?)"
            " RETURNING *",
            (cutoff, JobStatus.COMPLETED.value, JobStatus.FAILED.value, JobStatus.CANCELED.value),
            commit=True,
        )
        return [Job.from_row(row) for row in rows]

    # --- API keys: only the SHA-256 of a key is stored ---------------------------------------------

    async def add_key(self, key_id: str, name: str, key_sha256: str, scope: str = "tenant") -> None:
        await self._write(
            "INSERT INTO api_keys (id, name, key_sha256, created_at, scope) VALUES (?, ?, ?, ?, ?)",
            (key_id, name, key_sha256, time.time(), scope),
        )

    async def active_keys(self) -> list[tuple[str, str, str]]:
        """(id, sha256, scope) of every key not revoked."""
        rows = await self._fetch("SELECT id, key_sha256, scope FROM api_keys WHERE revoked_at IS NULL")
        return [(row[0], row[1], row[2]) for row in rows]

    async def count_keys(self) -> int:
        """Every key ever created, revoked ones included: auth stays on once there was one."""
        rows = await self._fetch("SELECT COUNT(*) FROM api_keys")
        return int(rows[0][0])

    async def list_keys(self) -> list[dict[str, Any]]:
        rows = await self._fetch(
            "SELECT id, name, scope, created_at, last_used_at, revoked_at FROM api_keys ORDER BY created_at"
        )
        return [dict(row) for row in rows]

    async def revoke_key(self, id_or_name: str) -> int:
        return await self._write(
            "UPDATE api_keys SET revoked_at = ? WHERE (id = ? OR name = ?) AND revoked_at IS NULL",
            (time.time(), id_or_name, id_or_name),
        )

    async def touch_key(self, key_id: str) -> None:
        await self._write("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (time.time(), key_id))

    async def writable(self) -> bool:
        try:
            await self._write("CREATE TEMP TABLE IF NOT EXISTS _probe (x)")
            return True
        except aiosqlite.Error:
            return False


@asynccontextmanager
async def open_store(path: Path) -> AsyncIterator[Store]:
    """Open (creating if need be) the SQLite job store at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    from speechsvc.jobs import uploads, webhooks  # their tables live in the same file

    async with aiosqlite.connect(path) as db:
        db.row_factory = aiosqlite.Row
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=FULL")
        await db.execute("PRAGMA busy_timeout=5000")
        for schema in (SCHEMA, uploads.SCHEMA, webhooks.SCHEMA):
            await db.executescript(schema)
        for table, column, declaration in MIGRATIONS:
            async with db.execute(f"PRAGMA table_info({table})") as cursor:
                columns = {row[1] for row in await cursor.fetchall()}
            if column not in columns:
                await db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
        await db.executescript(POST_MIGRATION)
        await db.commit()
        yield Store(db)
