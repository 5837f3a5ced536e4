"""The embedded store: one SQLite file (WAL, synchronous=FULL) through aiosqlite, audio and upload bytes
as files in the data dir. One process uses it: jobs a dead process left running are handed back at
start-up (`recover`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite

from speechsvc.errors import Conflict
from speechsvc.jobs.model import JobRequest, JobStatus
from speechsvc.jobs.records import (
    EXPIRED_UPLOAD_KEPT_S,
    FINISHED_FOR_RETENTION,
    INTERRUPTED_CALLBACK,
    PENDING,
    UNFINISHED,
    Delivery,
    Job,
    Upload,
    UploadState,
)
from speechsvc.store.base import Wake, redacted_audio_id
from speechsvc.store.files import commit_file, folder_size, sha256_file

SCHEMA = (Path(__file__).parent / "sqlite.sql").read_text()
# Columns added after the first release: (table, column, declaration), added to older files at open.
MIGRATIONS = (
    ("jobs", "owner", "TEXT"),
    ("jobs", "claimed_at", "REAL"),
    ("api_keys", "scope", "TEXT NOT NULL DEFAULT 'tenant'"),
    ("uploads", "owner", "TEXT"),
    ("webhooks", "owner", "TEXT"),
    ("uploads", "generation", "INTEGER NOT NULL DEFAULT 0"),
)
POST_MIGRATION = "CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, status);"


class SqliteStore:
    """All state of one machine; every write is committed before the caller goes on.

    One connection is shared by the handlers and the workers, so each operation (statements, fetch,
    commit) holds a lock: otherwise a commit can land while another coroutine's statement is still
    open ("cannot commit transaction - SQL statements in progress") or commit someone else's write.
    """

    name = "sqlite"
    shared = False

    def __init__(self, db: aiosqlite.Connection, data_dir: Path) -> None:
        self.db = db
        self.lock = asyncio.Lock()
        self.audio_dir = data_dir / "audio"
        self.upload_dir = data_dir / "uploads"
        self._rate: dict[str, list[float]] = {}

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

    # --- jobs -------------------------------------------------------------------------------------------

    async def insert(
        self,
        job_id: str,
        media_type: str,
        audio_bytes: int,
        request: JobRequest,
        status: JobStatus = JobStatus.QUEUED,
        owner: str | None = None,
    ) -> None:
        now = time.time()
        await self._write(
            "INSERT INTO jobs (id, status, created_at, updated_at, media_type, audio_path, audio_bytes, request,"
            " owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (job_id, status.value, now, now, media_type, str(self.audio_dir / job_id), audio_bytes,
             json.dumps(request.to_json()), owner),
        )  # fmt: skip

    async def get(self, job_id: str) -> Job | None:
        rows = await self._fetch("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return Job.from_row(rows[0]) if rows else None

    async def delete(self, job_id: str) -> Job | None:
        """Remove the job; a worker running it sees the row gone at its next progress update."""
        rows = await self._fetch("DELETE FROM jobs WHERE id = ? RETURNING *", (job_id,), commit=True)
        await self.delete_audio(redacted_audio_id(job_id))
        return Job.from_row(rows[0]) if rows else None

    async def claim(self, lease_s: float) -> Job | None:
        """Take the oldest Queued job (or a Pending one whose lease ran out) and mark it Pending."""
        now = time.time()
        rows = await self._fetch(
            "UPDATE jobs SET status = ?, attempts = attempts + 1, lease_expires_at = ?, updated_at = ?,"
            " claimed_at = ? WHERE id = (SELECT id FROM jobs WHERE status = ? OR (status = ? AND"
            " lease_expires_at < ?) ORDER BY created_at LIMIT 1) RETURNING *",
            (JobStatus.PENDING.value, now + lease_s, now, now, JobStatus.QUEUED.value, JobStatus.PENDING.value,
             now),
            commit=True,
        )  # fmt: skip
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

    async def recover(self, stale_s: float = 0.0) -> list[Job]:
        """At start-up: hand back jobs a previous process left running, and close interrupted callbacks
        (this process is the file's only user). Returns the finished jobs whose callback is still due."""
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
            " IS NOT NULL AND json_extract(request, '$.dialect') = 'raw' AND status IN (?, ?)"
            " ORDER BY finished_at",
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
        """Retention: remove jobs that finished before `cutoff`, with their audio; returns them."""
        rows = await self._fetch(
            "DELETE FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ? AND status IN (?, ?, ?)"
            " RETURNING *",
            (cutoff, *FINISHED_FOR_RETENTION),
            commit=True,
        )
        jobs = [Job.from_row(row) for row in rows]
        for job in jobs:
            await self.delete_audio(job.id)
            await self.delete_audio(redacted_audio_id(job.id))
            await self._write("DELETE FROM webhooks WHERE job_id = ?", (job.id,))  # its events go with it
        return jobs

    # --- audio: files in <data>/audio -------------------------------------------------------------------

    async def save_audio(self, job_id: str, spooled: Path) -> None:
        await asyncio.to_thread(commit_file, spooled, self.audio_dir / job_id)

    @contextlib.asynccontextmanager
    async def local_audio(self, job_id: str, scratch_dir: Path) -> AsyncIterator[Path]:
        yield self.audio_dir / job_id

    async def delete_audio(self, job_id: str) -> None:
        (self.audio_dir / job_id).unlink(missing_ok=True)

    # --- API keys: only the SHA-256 of a key is stored; rate windows in this process ---------------------

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

    async def rate_hit(self, identity: str, limit: int, window_s: float, now: float) -> float | None:
        """Count one request of `identity`; if `limit` were passed in the window, count nothing and return
        the seconds until the oldest request leaves it. One process: the window lives in memory."""
        seen = [at for at in self._rate.get(identity, []) if at > now - window_s]
        if len(seen) >= limit:
            self._rate[identity] = seen
            return seen[0] + window_s - now
        seen.append(now)
        self._rate[identity] = seen
        return None

    # --- uploads: rows here, bytes in <data>/uploads ----------------------------------------------------

    def _upload_path(self, upload_id: str) -> Path:
        return self.upload_dir / f"{upload_id}.bin"

    async def upload_create(self, upload: Upload) -> None:
        path = self._upload_path(upload.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        await self._write(
            "INSERT INTO uploads (id, file_name, mime_type, size_bytes, state, token_sha256, path, created_at,"
            " expires_at, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (upload.id, upload.file_name, upload.mime_type, upload.size_bytes, upload.state.value,
             upload.token_sha256, str(path), upload.created_at, upload.expires_at, upload.owner),
        )  # fmt: skip

    async def upload_get(self, upload_id: str) -> Upload | None:
        rows = await self._fetch("SELECT * FROM uploads WHERE id = ?", (upload_id,))
        return Upload.from_row(rows[0]) if rows else None

    async def upload_write(self, upload_id: str, offset: int, piece: Path, *, whole: bool) -> None:
        """Put a received piece (a local file) at `offset`; a `whole` file replaces what was there."""
        await self._unless_completed(upload_id)
        size = await asyncio.to_thread(_copy_into, piece, self._upload_path(upload_id), offset, whole)
        await self._set_received(upload_id, offset + size)

    async def upload_reset(self, upload_id: str) -> None:
        await self._unless_completed(upload_id)
        await asyncio.to_thread(_truncate, self._upload_path(upload_id))
        await self._set_received(upload_id, 0)

    async def _set_received(self, upload_id: str, received_bytes: int) -> None:
        await self._write(
            "UPDATE uploads SET received_bytes = ?, state = ?, generation = generation + 1"
            " WHERE id = ? AND state IN (?, ?)",
            (received_bytes, UploadState.UPLOADING.value, upload_id, UploadState.PENDING.value,
             UploadState.UPLOADING.value),
        )  # fmt: skip

    async def _unless_completed(self, upload_id: str) -> None:
        upload = await self.upload_get(upload_id)
        if upload is not None and upload.state == UploadState.COMPLETED:
            raise Conflict("the upload is already completed", param="upload_id")

    async def upload_complete(self, upload_id: str, sha256: str, generation: int) -> bool:
        """Completed with the hash of its bytes, only if no piece was written since `generation`."""
        changed = await self._write(
            "UPDATE uploads SET state = ?, sha256 = ?, completed_at = ? WHERE id = ? AND generation = ?"
            " AND state IN (?, ?)",
            (UploadState.COMPLETED.value, sha256, time.time(), upload_id, generation,
             UploadState.PENDING.value, UploadState.UPLOADING.value),
        )  # fmt: skip
        return changed == 1

    async def upload_sha256(self, upload_id: str) -> str:
        return await asyncio.to_thread(sha256_file, self._upload_path(upload_id))

    @contextlib.asynccontextmanager
    async def local_upload(self, upload_id: str, scratch_dir: Path) -> AsyncIterator[Path]:
        yield self._upload_path(upload_id)

    async def audio_from_upload(self, job_id: str, upload_id: str) -> None:
        """The job's audio is a hard link to the upload's bytes: it stays if the upload expires."""
        self.audio_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(os.link, self._upload_path(upload_id), self.audio_dir / job_id)

    async def upload_delete(self, upload_id: str) -> bool:
        deleted = await self._write("DELETE FROM uploads WHERE id = ?", (upload_id,))
        self._upload_path(upload_id).unlink(missing_ok=True)
        return deleted == 1

    async def upload_pending_bytes(self, owner: str, now: float) -> int:
        rows = await self._fetch(
            "SELECT COALESCE(SUM(size_bytes), 0) FROM uploads WHERE owner = ? AND state IN (?, ?)"
            " AND expires_at >= ?",
            (owner, UploadState.PENDING.value, UploadState.UPLOADING.value, now),
        )
        return int(rows[0][0])

    async def stored_bytes(self) -> int:
        return await asyncio.to_thread(folder_size, self.audio_dir, self.upload_dir)

    async def upload_expire_before(self, now: float) -> list[Upload]:
        """Mark uploads past their expiry as expired and delete their bytes; returns them."""
        rows = await self._fetch(
            "UPDATE uploads SET state = ? WHERE state != ? AND expires_at < ? RETURNING *",
            (UploadState.EXPIRED.value, UploadState.EXPIRED.value, now),
            commit=True,
        )
        expired = [Upload.from_row(row) for row in rows]
        for upload in expired:
            self._upload_path(upload.id).unlink(missing_ok=True)
        await self._write(
            "DELETE FROM uploads WHERE state = ? AND expires_at < ?",
            (UploadState.EXPIRED.value, now - EXPIRED_UPLOAD_KEPT_S),
        )
        return expired

    # --- webhook deliveries -----------------------------------------------------------------------------

    async def webhook_add(self, delivery_id: str, job_id: str, url: str, payload: str) -> bool:
        """A delivery for the job's event, owned by the job's owner; False if it is stored already."""
        now = time.time()
        added = await self._write(
            "INSERT OR IGNORE INTO webhooks (id, job_id, url, payload, state, next_attempt_at, created_at,"
            " updated_at, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, (SELECT owner FROM jobs WHERE id = ?))",
            (delivery_id, job_id, url, payload, PENDING, now, now, now, job_id),
        )
        return added == 1

    async def webhook_claim_due(self, now: float, hold_s: float) -> list[Delivery]:
        """Due deliveries, each with one more attempt counted and pushed `hold_s` ahead *before* it is sent:
        a crash mid-send means a later retry with the same webhook-id, never a lost delivery."""
        rows = await self._fetch(
            "UPDATE webhooks SET attempts = attempts + 1, next_attempt_at = ?, updated_at = ?"
            " WHERE state = ? AND next_attempt_at <= ? RETURNING *",
            (now + hold_s, now, PENDING, now),
            commit=True,
        )
        return [Delivery.from_row(row) for row in rows]

    async def webhook_finish(
        self, delivery_id: str, state: str, next_attempt_at: float, status: int | None, error: str | None
    ) -> None:
        await self._write(  # a delivered or given-up event keeps no copy of the result
            "UPDATE webhooks SET state = ?, next_attempt_at = ?, last_status = ?, last_error = ?, updated_at = ?,"
            " payload = CASE WHEN ? = ? THEN payload ELSE '' END WHERE id = ?",
            (state, next_attempt_at, status, error, time.time(), state, PENDING, delivery_id),
        )

    async def webhook_for_job(self, job_id: str) -> list[Delivery]:
        rows = await self._fetch("SELECT * FROM webhooks WHERE job_id = ? ORDER BY created_at", (job_id,))
        return [Delivery.from_row(row) for row in rows]

    async def webhook_forget(self, delivery_id: str) -> None:
        """Drop a finished delivery's payload (zero retention); its row stays as the delivery record."""
        await self._write("UPDATE webhooks SET payload = '' WHERE id = ?", (delivery_id,))

    async def jobs_missing_delivery(self, stale_s: float = 0.0) -> list[str]:
        """Finished jobs of the job dialects with a callback URL but no webhook row: a crash came between
        storing the result and storing its event."""
        rows = await self._fetch(
            "SELECT jobs.id FROM jobs LEFT JOIN webhooks ON webhooks.job_id = jobs.id"
            " WHERE webhooks.id IS NULL AND jobs.status IN ('Completed', 'Failed', 'Canceled')"
            " AND json_extract(jobs.request, '$.dialect') != 'raw'"
            " AND json_extract(jobs.request, '$.callback_url') IS NOT NULL AND jobs.finished_at <= ?",
            (time.time() - stale_s,),
        )
        return [row[0] for row in rows]

    async def webhook_next_due(self) -> float | None:
        rows = await self._fetch("SELECT MIN(next_attempt_at) FROM webhooks WHERE state = ?", (PENDING,))
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    # --- health and wake-ups: one process, so in-process events do it ------------------------------------

    async def writable(self) -> bool:
        try:
            await self._write("CREATE TEMP TABLE IF NOT EXISTS _probe (x)")
            return True
        except aiosqlite.Error:
            return False

    async def notify(self, event: str, job_id: str) -> None:
        return None

    async def listen(self, wake: Wake) -> None:
        return None


def _copy_into(piece: Path, target: Path, offset: int, whole: bool) -> int:
    size = piece.stat().st_size
    with open(piece, "rb") as source, open(target, "r+b") as out:
        out.seek(offset)
        shutil.copyfileobj(source, out, 1024 * 1024)
        if whole:
            out.truncate(offset + size)
        out.flush()
        os.fsync(out.fileno())
    return size


def _truncate(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError), open(path, "r+b") as out:  # gone once expired
        out.truncate(0)


@contextlib.asynccontextmanager
async def open_sqlite(path: Path, data_dir: Path) -> AsyncIterator[SqliteStore]:
    """Open (creating if need be) the SQLite store at `path`, migrating an older file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(path) as db:
        db.row_factory = aiosqlite.Row
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=FULL")
        await db.execute("PRAGMA busy_timeout=5000")
        await db.executescript(SCHEMA)
        for table, column, declaration in MIGRATIONS:
            async with db.execute(f"PRAGMA table_info({table})") as cursor:
                columns = {row[1] for row in await cursor.fetchall()}
            if column not in columns:
                await db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
        await db.executescript(POST_MIGRATION)
        await db.commit()
        yield SqliteStore(db, data_dir)
