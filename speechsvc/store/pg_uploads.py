"""The uploads of the shared store (API.md §4): rows in `uploads`, bytes in chunked `blobs` rows under
'upload:<id>'. A mixin of PostgresStore, which lends it its connections and byte helpers."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from speechsvc.errors import Conflict
from speechsvc.jobs.records import EXPIRED_UPLOAD_KEPT_S, Upload, UploadState

NOW = "extract(epoch from clock_timestamp())"
LIVE = (UploadState.PENDING.value, UploadState.UPLOADING.value)  # states whose bytes may still change


def job_key(job_id: str) -> str:
    return f"job:{job_id}"


def upload_key(upload_id: str) -> str:
    return f"upload:{upload_id}"


class PgUploads:
    if TYPE_CHECKING:  # provided by PostgresStore

        def _conn(self) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]: ...
        def _blob_conn(self) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]: ...
        async def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]: ...
        async def _put_file(
            self, conn: psycopg.AsyncConnection[Any], key: str, offset: int, path: Path
        ) -> int: ...
        def _local_copy(self, key: str, path: Path) -> contextlib.AbstractAsyncContextManager[Path]: ...

    # --- uploads ----------------------------------------------------------------------------------------

    async def upload_create(self, upload: Upload) -> None:
        await self._rows(
            "INSERT INTO uploads (id, file_name, mime_type, size_bytes, state, token_sha256, created_at,"
            " expires_at, owner) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (upload.id, upload.file_name, upload.mime_type, upload.size_bytes, upload.state.value,
             upload.token_sha256, upload.created_at, upload.expires_at, upload.owner),
        )  # fmt: skip

    async def upload_get(self, upload_id: str) -> Upload | None:
        rows = await self._rows("SELECT * FROM uploads WHERE id = %s", (upload_id,))
        return Upload.from_row(rows[0]) if rows else None

    async def upload_write(self, upload_id: str, offset: int, piece: Path, *, whole: bool) -> None:
        """Store a piece received by any node. The row lock and the offset check make two nodes receiving
        pieces of one upload at once safe: the second finds the offset moved and gets a 409."""
        key = upload_key(upload_id)
        async with self._blob_conn() as conn, conn.transaction():
            cursor = await conn.execute(
                "SELECT received_bytes, state FROM uploads WHERE id = %s FOR UPDATE", (upload_id,)
            )
            row = await cursor.fetchone()
            if row is None or (not whole and row["received_bytes"] != offset):
                raise Conflict("another piece of this upload was received meanwhile", param="upload_id")
            if row["state"] not in LIVE:
                raise Conflict(f"the upload is {row['state']}", param="upload_id")
            await conn.execute(
                "DELETE FROM blobs WHERE key = %s AND offset_bytes >= %s", (key, 0 if whole else offset)
            )
            size = await self._put_file(conn, key, offset, piece)
            await conn.execute(
                "UPDATE uploads SET received_bytes = %s, state = %s, generation = generation + 1 WHERE id = %s",
                (offset + size, UploadState.UPLOADING.value, upload_id),
            )

    async def upload_reset(self, upload_id: str) -> None:
        """Forget the bytes received; a completed upload's are never touched (409), whichever node asks."""
        async with self._conn() as conn, conn.transaction():
            cursor = await conn.execute("SELECT state FROM uploads WHERE id = %s FOR UPDATE", (upload_id,))
            row = await cursor.fetchone()
            if row is not None and row["state"] == UploadState.COMPLETED.value:
                raise Conflict("the upload is already completed", param="upload_id")
            await conn.execute("DELETE FROM blobs WHERE key = %s", (upload_key(upload_id),))
            await conn.execute(
                "UPDATE uploads SET received_bytes = 0, state = %s, generation = generation + 1"
                " WHERE id = %s AND state = ANY(%s)",
                (UploadState.UPLOADING.value, upload_id, list(LIVE)),
            )

    async def upload_complete(self, upload_id: str, sha256: str, generation: int) -> bool:
        """Completed with the hash of its bytes, only if they are still those of `generation` (no node
        wrote a piece since they were hashed and probed)."""
        changed = await self._rows(
            f"UPDATE uploads SET state = %s, sha256 = %s, completed_at = {NOW} WHERE id = %s"
            " AND generation = %s AND state = ANY(%s) RETURNING id",
            (UploadState.COMPLETED.value, sha256, upload_id, generation, list(LIVE)),
        )
        return bool(changed)

    async def upload_sha256(self, upload_id: str) -> str:
        digest = hashlib.sha256()
        async with self._blob_conn() as conn:
            cursor = conn.cursor()
            async for row in cursor.stream(
                "SELECT data FROM blobs WHERE key = %s ORDER BY offset_bytes", (upload_key(upload_id),)
            ):
                digest.update(row["data"])
        return digest.hexdigest()

    def local_upload(self, upload_id: str, scratch_dir: Path) -> contextlib.AbstractAsyncContextManager[Path]:
        return self._local_copy(upload_key(upload_id), scratch_dir / f"{upload_id}.upload-copy")

    async def audio_from_upload(self, job_id: str, upload_id: str) -> None:
        """The job gets its own copy of the bytes (in the database): it keeps them if the upload expires."""
        async with self._blob_conn() as conn:
            await conn.execute(
                "INSERT INTO blobs (key, offset_bytes, data) SELECT %s, offset_bytes, data FROM blobs"
                " WHERE key = %s",
                (job_key(job_id), upload_key(upload_id)),
            )

    async def upload_delete(self, upload_id: str) -> bool:
        async with self._conn() as conn, conn.transaction():
            cursor = await conn.execute("DELETE FROM uploads WHERE id = %s RETURNING id", (upload_id,))
            await conn.execute("DELETE FROM blobs WHERE key = %s", (upload_key(upload_id),))
            return bool(await cursor.fetchall())

    async def upload_pending_bytes(self, owner: str, now: float) -> int:
        """Declared bytes of `owner`'s unfinished, unexpired uploads, created on any node."""
        rows = await self._rows(
            "SELECT COALESCE(SUM(size_bytes), 0) AS n FROM uploads WHERE owner = %s AND state = ANY(%s)"
            " AND expires_at >= %s",
            (owner, list(LIVE), now),
        )
        return int(rows[0]["n"])

    async def stored_bytes(self) -> int:
        """Every upload and audio byte in the database (octet_length reads the TOAST header only)."""
        rows = await self._rows("SELECT COALESCE(SUM(octet_length(data)), 0) AS n FROM blobs")
        return int(rows[0]["n"])

    async def upload_expire_before(self, now: float) -> list[Upload]:
        rows = await self._rows(
            "UPDATE uploads SET state = %s WHERE state != %s AND expires_at < %s RETURNING *",
            (UploadState.EXPIRED.value, UploadState.EXPIRED.value, now),
        )
        expired = [Upload.from_row(row) for row in rows]
        if expired:
            keys = [upload_key(upload.id) for upload in expired]
            await self._rows("DELETE FROM blobs WHERE key = ANY(%s)", (keys,))
        await self._rows(
            "DELETE FROM uploads WHERE state = %s AND expires_at < %s",
            (UploadState.EXPIRED.value, now - EXPIRED_UPLOAD_KEPT_S),
        )
        return expired
