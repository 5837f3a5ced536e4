"""Every connection an API node opens to PostgreSQL is bounded (issue 25, finding 2): a pool for queries,
a small one for audio bytes, at most one direct connection while a pool is exhausted or backing off.
Before, each call that waited 3 s for the pool opened a direct connection of its own, without bound."""

import asyncio
import contextlib
import time
from typing import Any

import psycopg
import pytest

from speechsvc.errors import StoreUnavailable
from speechsvc.store import pg_connection
from speechsvc.store.postgres import open_postgres


def backends(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as admin:
        row = admin.execute(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND pid != pg_backend_pid()"
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_a_flood_never_opens_more_than_the_budget(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_connection, "POOL_WAIT_S", 0.1)
    async with open_postgres(postgres_url, max_connections=5) as store:  # 2 queries, 2 bytes, 1 direct

        async def hold() -> str:
            try:
                async with store._conn():
                    await asyncio.sleep(1.0)
                return "served"
            except StoreUnavailable:
                return "503"

        flood = [asyncio.create_task(hold()) for _ in range(12)]
        await asyncio.sleep(0.6)
        during = await asyncio.to_thread(backends, postgres_url)
        outcomes = await asyncio.gather(*flood)
    assert during <= 5, f"{during} connections for a budget of 5"
    assert outcomes.count("served") >= 3 and "503" in outcomes


async def test_moving_bytes_never_starves_the_queries(postgres_url: str) -> None:
    async with open_postgres(postgres_url, max_connections=5) as store, contextlib.AsyncExitStack() as held:
        for _ in range(pg_connection.BLOB_CONNECTIONS):  # every byte connection busy (long uploads)
            await held.enter_async_context(store._blob_conn())
        started = time.monotonic()
        assert await store.get("nothing") is None
        assert await store.count_keys() == 0
        assert time.monotonic() - started < pg_connection.POOL_WAIT_S


def test_the_budget_is_what_the_readme_says() -> None:
    connections: Any = pg_connection.Connections("postgresql://x@127.0.0.1:1/db", 10)
    total = connections.queries.max_size + connections.blobs.max_size + pg_connection.DIRECT_CONNECTIONS
    assert total + 1 == 11  # and one for LISTEN
