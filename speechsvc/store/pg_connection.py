"""Connections to the shared store, every one of them bounded (issue 25): a pool for queries, a small
separate pool for moving audio bytes (a slow 200 MB write never takes a query's connection), at most
DIRECT_CONNECTIONS direct connections while a pool backs off after an outage, and one for LISTEN. With
the default 10: 7 + 2 + 1, and LISTEN, is 11 per node. Also the schema migrations, applied once under an
advisory lock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from speechsvc.errors import StoreUnavailable

log = logging.getLogger(__name__)

MIGRATIONS = (
    (1, (Path(__file__).parent / "postgres.sql").read_text()),
    # issue 25: an upload's bytes carry a generation, so that `complete` on one node sees a PUT on another
    (2, "ALTER TABLE uploads ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;"),
)
MIGRATION_LOCK = 0x5EEC4_5C  # pg_advisory_lock key: one node migrates, the others wait
CONNECT_TIMEOUT_S = 5.0
POOL_WAIT_S = 3.0
BLOB_CONNECTIONS = 2  # the bytes pool
DIRECT_CONNECTIONS = 1  # beyond both pools, while one backs off
CONNECTION_KWARGS: dict[str, Any] = {"autocommit": True, "row_factory": dict_row, "prepare_threshold": None}
UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout, OSError)


class Connections:
    """The node's connections to the database: `query()` and `blob()` lend one from their pool."""

    def __init__(self, url: str, max_connections: int) -> None:
        if max_connections < BLOB_CONNECTIONS + DIRECT_CONNECTIONS + 1:
            raise ValueError(f"a node needs at least {BLOB_CONNECTIONS + DIRECT_CONNECTIONS + 1} connections")
        self.url = url
        self.queries = _pool(url, max_connections - BLOB_CONNECTIONS - DIRECT_CONNECTIONS)
        self.blobs = _pool(url, BLOB_CONNECTIONS)
        self.direct = asyncio.Semaphore(DIRECT_CONNECTIONS)

    async def open(self) -> None:
        for pool in (self.queries, self.blobs):
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S * 2)

    async def close(self) -> None:
        for pool in (self.queries, self.blobs):
            await pool.close()

    def query(self) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        return self._lend(self.queries)

    def blob(self) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        return self._lend(self.blobs)

    @contextlib.asynccontextmanager
    async def _lend(self, pool: AsyncConnectionPool) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection; the database being unreachable (or every connection this node may open
        being busy) is a 503 store_unavailable.

        After an outage a pool reconnects with an exponential backoff (1, 2, 4, … s, without a cap), so it
        may still be waiting when the database is back: then a direct connection serves this call, if
        none of the DIRECT_CONNECTIONS is in use; otherwise the call fails rather than open one more."""
        try:
            try:
                conn = await pool.getconn(timeout=POOL_WAIT_S)
            except PoolTimeout:
                if self.direct.locked():
                    raise
                async with (
                    self.direct,
                    await psycopg.AsyncConnection.connect(
                        self.url, **CONNECTION_KWARGS, connect_timeout=int(CONNECT_TIMEOUT_S)
                    ) as direct,
                ):
                    yield direct
                return
            try:
                yield conn
            finally:
                await pool.putconn(conn)
        except UNAVAILABLE as exc:
            raise StoreUnavailable(f"the job database is unreachable: {type(exc).__name__}") from exc


def _pool(url: str, size: int) -> AsyncConnectionPool:
    return AsyncConnectionPool(
        url,
        min_size=1,
        max_size=size,
        kwargs=CONNECTION_KWARGS,
        check=AsyncConnectionPool.check_connection,
        open=False,
    )


async def migrate(url: str) -> None:
    """Apply the schema versions this database lacks, under an advisory lock (nodes starting at once
    wait for the first one)."""
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, connect_timeout=int(CONNECT_TIMEOUT_S)
    ) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                " applied_at DOUBLE PRECISION NOT NULL)"
            )
            cursor = await conn.execute("SELECT version FROM schema_migrations")
            applied = {row[0] for row in await cursor.fetchall()}
            for version, sql in MIGRATIONS:
                if version in applied:
                    continue
                async with conn.transaction():
                    await conn.execute(sql.encode())  # trusted, static DDL (bytes: no placeholders)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, applied_at) VALUES (%s, %s)",
                        (version, time.time()),
                    )
                log.info("event=migration version=%s", version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
