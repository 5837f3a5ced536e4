"""The shared store: one PostgreSQL database for every node of a cluster (API.md §5a), through psycopg 3.

Why psycopg 3 (not asyncpg): it runs with `prepare_threshold=None`, so it also works behind PgBouncer in
transaction mode; LISTEN/NOTIFY comes as an async iterator on a plain connection; its pool checks a
connection before lending it, so the nodes reconnect by themselves after a database restart; and the
same driver serves the synchronous `speechsvc keys` command. Its binary wheel carries libpq.

The queue is the pattern of procrastinate, River and Oban: a worker claims the oldest claimable job
with `FOR UPDATE SKIP LOCKED` (workers never block each other), holds it under a lease it renews with
every progress write, and a job whose worker died is claimed again once the lease has run out. All
lease times come from the database's clock, so the nodes' clocks need not agree. NOTIFY wakes workers on
enqueue and waiting API nodes on finish (never on progress); everything also works by polling, e.g.
behind PgBouncer in transaction mode, where LISTEN does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from speechsvc.errors import StoreUnavailable
from speechsvc.jobs.model import JobRequest, JobStatus
from speechsvc.jobs.records import (
    FINISHED_FOR_RETENTION,
    INTERRUPTED_CALLBACK,
    PENDING,
    UNFINISHED,
    Delivery,
    Job,
)
from speechsvc.store.base import Wake, redacted_audio_id
from speechsvc.store.pg_connection import CONNECT_TIMEOUT_S, UNAVAILABLE, Connections, migrate
from speechsvc.store.pg_uploads import NOW, PgUploads, job_key

log = logging.getLogger(__name__)

CHANNEL = "speechsvc_jobs"
CHUNK_BYTES = 1024 * 1024
LISTEN_RETRY_S = 1.0


class PostgresStore(PgUploads):
    name = "postgresql"
    shared = True

    def __init__(self, connections: Connections) -> None:
        self.connections = connections
        self.url = connections.url

    def _conn(self) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        return self.connections.query()

    def _blob_conn(self) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        """For moving audio bytes: a pool of its own, so that long writes never starve the queries."""
        return self.connections.blob()

    async def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        async with self._conn() as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchall() if cursor.description else []

    async def _count(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        async with self._conn() as conn:
            cursor = await conn.execute(sql, params)
            return cursor.rowcount

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
        await self._rows(
            f"INSERT INTO jobs (id, status, created_at, updated_at, media_type, audio_bytes, request, owner)"
            f" VALUES (%s, %s, {NOW}, {NOW}, %s, %s, %s, %s)",
            (job_id, status.value, media_type, audio_bytes, Jsonb(request.to_json()), owner),
        )

    async def get(self, job_id: str) -> Job | None:
        rows = await self._rows("SELECT * FROM jobs WHERE id = %s", (job_id,))
        return Job.from_row(rows[0]) if rows else None

    async def delete(self, job_id: str) -> Job | None:
        rows = await self._rows("DELETE FROM jobs WHERE id = %s RETURNING *", (job_id,))
        await self.delete_audio(redacted_audio_id(job_id))
        return Job.from_row(rows[0]) if rows else None

    async def claim(self, lease_s: float) -> Job | None:
        """The oldest Queued job, or a Pending one whose lease ran out; other workers skip the row this
        one has locked instead of waiting for it."""
        rows = await self._rows(
            f"UPDATE jobs SET status = 'Pending', attempts = attempts + 1, lease_expires_at = {NOW} + %s,"
            f" updated_at = {NOW}, claimed_at = {NOW} WHERE id = (SELECT id FROM jobs WHERE status = 'Queued'"
            f" OR (status = 'Pending' AND lease_expires_at < {NOW}) ORDER BY created_at"
            " FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING *",
            (lease_s,),
        )
        return Job.from_row(rows[0]) if rows else None

    async def update_progress(self, job_id: str, progress: float, lease_s: float) -> bool:
        changed = await self._count(
            f"UPDATE jobs SET progress = %s, lease_expires_at = {NOW} + %s, updated_at = {NOW}"
            " WHERE id = %s AND status = 'Pending'",
            (progress, lease_s, job_id),
        )
        return changed == 1

    async def complete(self, job_id: str, result: dict[str, Any], *, has_callback: bool) -> bool:
        status = JobStatus.READY if has_callback else JobStatus.COMPLETED
        changed = await self._count(
            f"UPDATE jobs SET status = %s, result = %s, progress = 100, lease_expires_at = NULL,"
            f" updated_at = {NOW}, finished_at = {NOW} WHERE id = %s AND status = 'Pending'",
            (status.value, Jsonb(result), job_id),
        )
        return changed == 1

    async def fail(self, job_id: str, error: str) -> bool:
        changed = await self._count(
            f"UPDATE jobs SET status = 'Failed', error = %s, lease_expires_at = NULL, updated_at = {NOW},"
            f" finished_at = {NOW} WHERE id = %s AND status = ANY(%s)",
            (error, job_id, list(UNFINISHED)),
        )
        return changed == 1

    async def cancel(self, job_id: str) -> Job | None:
        rows = await self._rows(
            f"UPDATE jobs SET status = 'Canceled', lease_expires_at = NULL, updated_at = {NOW},"
            f" finished_at = {NOW} WHERE id = %s AND status = ANY(%s) RETURNING *",
            (job_id, list(UNFINISHED)),
        )
        return Job.from_row(rows[0]) if rows else None

    async def mark_callback_started(self, job_id: str) -> bool:
        """Claim the one callback attempt, in the database, before sending: one node ever sends it."""
        changed = await self._count(
            f"UPDATE jobs SET callback_started_at = {NOW} WHERE id = %s AND callback_started_at IS NULL",
            (job_id,),
        )
        return changed == 1

    async def finish_callback(self, job_id: str, outcome: dict[str, Any]) -> None:
        await self._rows(
            f"UPDATE jobs SET callback_outcome = %s, updated_at = {NOW},"
            " status = CASE status WHEN 'Ready' THEN 'Completed' ELSE status END WHERE id = %s",
            (Jsonb(outcome), job_id),
        )

    async def recover(self, stale_s: float) -> list[Job]:
        """Many nodes share the jobs: running ones are never taken back here (their lease does that). A
        callback whose attempt started more than `stale_s` ago was cut off by a dead node: closed, never
        repeated. Returns finished raw jobs whose callback is still due (a node died before making it)."""
        interrupted = {"url": None, "attempted_at": None, "http_status": None, "error": INTERRUPTED_CALLBACK}
        await self._rows(
            f"UPDATE jobs SET status = 'Completed', callback_outcome = %s, updated_at = {NOW}"
            f" WHERE status = 'Ready' AND callback_started_at < {NOW} - %s",
            (Jsonb(interrupted), stale_s),
        )
        rows = await self._rows(
            f"SELECT * FROM jobs WHERE callback_started_at IS NULL AND request->>'callback_url' IS NOT NULL"
            f" AND request->>'dialect' = 'raw' AND status IN ('Ready', 'Failed')"
            f" AND finished_at < {NOW} - %s ORDER BY finished_at",
            (stale_s,),
        )
        return [Job.from_row(row) for row in rows]

    async def count_by_status(self) -> dict[str, int]:
        rows = await self._rows("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")
        return {row["status"]: int(row["n"]) for row in rows}

    async def count_status(self, status: JobStatus, owner: str | None = None) -> int:
        if owner is None:
            rows = await self._rows("SELECT COUNT(*) AS n FROM jobs WHERE status = %s", (status.value,))
        else:
            rows = await self._rows(
                "SELECT COUNT(*) AS n FROM jobs WHERE status = %s AND owner = %s", (status.value, owner)
            )
        return int(rows[0]["n"])

    async def delete_finished_before(self, cutoff: float) -> list[Job]:
        rows = await self._rows(
            "DELETE FROM jobs WHERE finished_at < %s AND status = ANY(%s) RETURNING *",
            (cutoff, list(FINISHED_FOR_RETENTION)),
        )
        jobs = [Job.from_row(row) for row in rows]
        if jobs:
            keys = [job_key(i) for job in jobs for i in (job.id, redacted_audio_id(job.id))]
            await self._rows("DELETE FROM blobs WHERE key = ANY(%s)", (keys,))
            await self._rows("DELETE FROM webhooks WHERE job_id = ANY(%s)", ([job.id for job in jobs],))
        return jobs

    # --- bytes: chunked rows, streamed in and out --------------------------------------------------------

    async def _put_file(self, conn: psycopg.AsyncConnection[Any], key: str, offset: int, path: Path) -> int:
        size = 0
        with open(path, "rb") as source:
            while chunk := await asyncio.to_thread(source.read, CHUNK_BYTES):
                await conn.execute(
                    "INSERT INTO blobs (key, offset_bytes, data) VALUES (%s, %s, %s)",
                    (key, offset + size, chunk),
                )
                size += len(chunk)
        return size

    async def _get_file(self, key: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        async with self._blob_conn() as conn:
            with open(target, "wb") as out:
                cursor = conn.cursor()
                async for row in cursor.stream(
                    "SELECT data FROM blobs WHERE key = %s ORDER BY offset_bytes", (key,)
                ):
                    await asyncio.to_thread(out.write, row["data"])

    async def save_audio(self, job_id: str, spooled: Path) -> None:
        async with self._blob_conn() as conn, conn.transaction():
            await conn.execute("DELETE FROM blobs WHERE key = %s", (job_key(job_id),))
            await self._put_file(conn, job_key(job_id), 0, spooled)
        spooled.unlink(missing_ok=True)

    @contextlib.asynccontextmanager
    async def _local_copy(self, key: str, path: Path) -> AsyncIterator[Path]:
        """The bytes of `key` in a local file for as long as the caller needs them."""
        try:
            await self._get_file(key, path)
            yield path
        finally:
            path.unlink(missing_ok=True)

    def local_audio(self, job_id: str, scratch_dir: Path) -> contextlib.AbstractAsyncContextManager[Path]:
        return self._local_copy(job_key(job_id), scratch_dir / f"{job_id}.audio")

    async def delete_audio(self, job_id: str) -> None:
        await self._rows("DELETE FROM blobs WHERE key = %s", (job_key(job_id),))

    # --- API keys and rate windows ----------------------------------------------------------------------

    async def add_key(self, key_id: str, name: str, key_sha256: str, scope: str = "tenant") -> None:
        await self._rows(
            f"INSERT INTO api_keys (id, name, key_sha256, created_at, scope) VALUES (%s, %s, %s, {NOW}, %s)",
            (key_id, name, key_sha256, scope),
        )

    async def active_keys(self) -> list[tuple[str, str, str]]:
        rows = await self._rows("SELECT id, key_sha256, scope FROM api_keys WHERE revoked_at IS NULL")
        return [(row["id"], row["key_sha256"], row["scope"]) for row in rows]

    async def count_keys(self) -> int:
        return int((await self._rows("SELECT COUNT(*) AS n FROM api_keys"))[0]["n"])

    async def list_keys(self) -> list[dict[str, Any]]:
        return await self._rows(
            "SELECT id, name, scope, created_at, last_used_at, revoked_at FROM api_keys ORDER BY created_at"
        )

    async def revoke_key(self, id_or_name: str) -> int:
        return await self._count(
            f"UPDATE api_keys SET revoked_at = {NOW} WHERE (id = %s OR name = %s) AND revoked_at IS NULL",
            (id_or_name, id_or_name),
        )

    async def touch_key(self, key_id: str) -> None:
        await self._rows(f"UPDATE api_keys SET last_used_at = {NOW} WHERE id = %s", (key_id,))

    async def rate_hit(self, identity: str, limit: int, window_s: float, now: float) -> float | None:
        """The sliding window of every API node at once: one transaction per request, serialised per key
        by an advisory lock."""
        async with self._conn() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (identity,))
            await conn.execute(
                "DELETE FROM rate_events WHERE identity = %s AND at <= %s", (identity, now - window_s)
            )
            cursor = await conn.execute(
                "SELECT COUNT(*) AS n, MIN(at) AS oldest FROM rate_events WHERE identity = %s", (identity,)
            )
            row = await cursor.fetchone()
            assert row is not None
            if row["n"] >= limit:
                return float(row["oldest"]) + window_s - now
            await conn.execute("INSERT INTO rate_events (identity, at) VALUES (%s, %s)", (identity, now))
            return None

    # --- webhook deliveries: each attempt claimed by one node -------------------------------------------

    async def webhook_add(self, delivery_id: str, job_id: str, url: str, payload: str) -> bool:
        """False if the event is stored already (its id is a function of the job and event)."""
        rows = await self._rows(
            f"INSERT INTO webhooks (id, job_id, url, payload, state, next_attempt_at, created_at, updated_at,"
            f" owner) VALUES (%s, %s, %s, %s, %s, {NOW}, {NOW}, {NOW}, (SELECT owner FROM jobs WHERE id = %s))"
            " ON CONFLICT (id) DO NOTHING RETURNING id",
            (delivery_id, job_id, url, payload, PENDING, job_id),
        )
        return bool(rows)

    async def webhook_claim_due(self, now: float, hold_s: float) -> list[Delivery]:
        rows = await self._rows(
            f"UPDATE webhooks SET attempts = attempts + 1, next_attempt_at = {NOW} + %s, updated_at = {NOW}"
            " WHERE id IN (SELECT id FROM webhooks WHERE state = %s AND next_attempt_at <= %s"
            " FOR UPDATE SKIP LOCKED LIMIT 50) RETURNING *",
            (hold_s, PENDING, now),
        )
        return [Delivery.from_row(row) for row in rows]

    async def webhook_finish(
        self, delivery_id: str, state: str, next_attempt_at: float, status: int | None, error: str | None
    ) -> None:
        await self._rows(  # a delivered or given-up event keeps no copy of the result
            f"UPDATE webhooks SET state = %s, next_attempt_at = %s, last_status = %s, last_error = %s,"
            f" updated_at = {NOW}, payload = CASE WHEN %s = %s THEN payload ELSE '' END WHERE id = %s",
            (state, next_attempt_at, status, error, state, PENDING, delivery_id),
        )

    async def webhook_for_job(self, job_id: str) -> list[Delivery]:
        rows = await self._rows("SELECT * FROM webhooks WHERE job_id = %s ORDER BY created_at", (job_id,))
        return [Delivery.from_row(row) for row in rows]

    async def webhook_forget(self, delivery_id: str) -> None:
        await self._rows("UPDATE webhooks SET payload = '' WHERE id = %s", (delivery_id,))

    async def jobs_missing_delivery(self, stale_s: float = 0.0) -> list[str]:
        """Finished job-dialect jobs with no webhook event, finished `stale_s` ago (not one whose node is
        about to store its event right now)."""
        rows = await self._rows(
            "SELECT jobs.id FROM jobs LEFT JOIN webhooks ON webhooks.job_id = jobs.id"
            " WHERE webhooks.id IS NULL AND jobs.status IN ('Completed', 'Failed', 'Canceled')"
            " AND jobs.request->>'dialect' != 'raw' AND jobs.request->>'callback_url' IS NOT NULL"
            f" AND jobs.finished_at <= {NOW} - %s",
            (stale_s,),
        )
        return [row["id"] for row in rows]

    async def webhook_next_due(self) -> float | None:
        rows = await self._rows(
            "SELECT MIN(next_attempt_at) AS due FROM webhooks WHERE state = %s", (PENDING,)
        )
        return float(rows[0]["due"]) if rows and rows[0]["due"] is not None else None

    # --- health and wake-ups ----------------------------------------------------------------------------

    async def writable(self) -> bool:
        try:
            await self._rows("SELECT 1")
            return True
        except StoreUnavailable:
            return False

    async def notify(self, event: str, job_id: str) -> None:
        """Wake the other nodes: "enqueued" (workers) or "finished" (API nodes holding wait=)."""
        with contextlib.suppress(StoreUnavailable):
            await self._rows("SELECT pg_notify(%s, %s)", (CHANNEL, f"{event}:{job_id}"))

    async def listen(self, wake: Wake) -> None:
        """LISTEN on a dedicated connection for as long as the node runs, reconnecting after an outage."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, connect_timeout=int(CONNECT_TIMEOUT_S)
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    async for notice in conn.notifies():
                        event, _, job_id = notice.payload.partition(":")
                        wake(event, job_id)
            except UNAVAILABLE as exc:
                log.debug("event=listen error=%s reconnecting", type(exc).__name__)
            await asyncio.sleep(LISTEN_RETRY_S)


@contextlib.asynccontextmanager
async def open_postgres(url: str, max_connections: int = 10) -> AsyncIterator[PostgresStore]:
    """Connect, migrate, and lend a pooled store; StoreUnavailable (one clear line) if unreachable."""
    try:
        await migrate(url)
    except UNAVAILABLE as exc:
        raise StoreUnavailable("cannot reach the database: " + " ".join(str(exc).split())) from exc
    except (psycopg.ProgrammingError, ValueError):  # its message may quote the URL, password and all
        raise StoreUnavailable("the database URL is malformed") from None
    connections = Connections(url, max_connections)
    await connections.open()
    try:
        yield PostgresStore(connections)
    finally:
        await connections.close()
