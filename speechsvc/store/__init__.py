"""The store seam: `open_store(config)` gives the SQLite store (one machine) or the PostgreSQL one (a
cluster), chosen by --database."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from speechsvc.config import Config
from speechsvc.jobs.records import Delivery, Job, Upload, UploadState
from speechsvc.store.base import Store, Wake, redacted_audio_id

__all__ = [
    "Delivery",
    "Job",
    "Store",
    "Upload",
    "UploadState",
    "Wake",
    "open_store",
    "open_url",
    "redacted_audio_id",
]


@contextlib.asynccontextmanager
async def open_url(url: str, data_dir: Path) -> AsyncIterator[Store]:
    """The store at `url`: sqlite:///PATH (files under data_dir) or postgresql://…"""
    if url.startswith("sqlite:///"):
        from speechsvc.store.sqlite import open_sqlite

        async with open_sqlite(Path(url.removeprefix("sqlite:///")), data_dir) as sqlite:
            yield sqlite
    else:
        from speechsvc.store.postgres import open_postgres

        async with open_postgres(url) as postgres:
            yield postgres


@contextlib.asynccontextmanager
async def open_store(config: Config) -> AsyncIterator[Store]:
    async with open_url(config.database_url, config.data_dir) as store:
        yield store
