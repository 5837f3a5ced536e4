"""Connections to the shared store: a pooled connection (or a direct one while the pool backs off after an
outage), and the schema migrations, applied once under an advisory lock."""

from __future__ import annotations

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

MIGRATIONS = ((1, (Path(__file__).parent / "postgres.sql").read_text()),)
MIGRATION_LOCK = 0x5EEC4_5C  # pg_advisory_lock key: one node migrates, the others wait
CONNECT_TIMEOUT_S = 5.0
POOL_WAIT_S = 3.0
CONNECTION_KWARGS: dict[str, Any] = {"autocommit": True, "row_factory": dict_row, "prepare_threshold": None}
UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout, OSError)


@contextlib.asynccontextmanager
async def connection(pool: AsyncConnectionPool, url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A pooled connection; the database being unreachable is a 503 store_unavailable.

    After an outage the pool reconnects with an exponential backoff (1, 2, 4, … s, without a cap), so it
    may still be waiting when the database is back: then one direct connection serves this call."""
    try:
        direct = False
        try:
            conn = await pool.getconn(timeout=POOL_WAIT_S)
        except PoolTimeout:
            conn = await psycopg.AsyncConnection.connect(
                url, **CONNECTION_KWARGS, connect_timeout=int(CONNECT_TIMEOUT_S)
            )
            direct = True
        try:
            yield conn
        finally:
            if direct:
                await conn.close()
            else:
                await pool.putconn(conn)
    except UNAVAILABLE as exc:
        raise StoreUnavailable(f"the job database is unreachable: {type(exc).__name__}") from exc


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
