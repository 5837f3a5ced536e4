"""What only the SQLite store does (the shared behaviour is in test_store_contract.py): a WAL file with
full sync, readable by any SQLite client, and start-up recovery of the one process that uses it."""

import sqlite3
from pathlib import Path

from speechsvc.jobs.model import JobRequest, JobStatus
from speechsvc.jobs.records import INTERRUPTED_CALLBACK
from speechsvc.store import open_url

REQUEST = JobRequest(model="tiny.en")
HOOKED = JobRequest(model="tiny.en", callback_url="http://127.0.0.1:9/hook", userdata="u1")


def url(path: Path) -> str:
    return f"sqlite:///{path}"


async def test_file_is_wal_with_full_sync(tmp_path: Path) -> None:
    async with open_url(url(tmp_path / "jobs.db"), tmp_path) as store:
        db = store.db  # type: ignore[attr-defined]
        assert (await (await db.execute("PRAGMA journal_mode")).fetchone())[0] == "wal"
        assert (await (await db.execute("PRAGMA synchronous")).fetchone())[0] == 2  # FULL


async def test_result_survives_reopen_and_interrupted_callback_is_closed(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    async with open_url(url(db), tmp_path) as store:
        await store.insert("a", "audio/wav", 10, HOOKED)
        await store.claim(lease_s=60)
        assert await store.complete("a", {"text": "hi"}, has_callback=True)
        assert await store.mark_callback_started("a")
    with sqlite3.connect(db) as raw:  # durable on disk, readable by any SQLite client
        assert raw.execute("SELECT status, result FROM jobs").fetchone() == ("Ready", '{"text": "hi"}')
    async with open_url(url(db), tmp_path) as store:
        # the process died during the attempt: the job is closed, the callback not repeated
        assert await store.recover(0.0) == []
        job = await store.get("a")
        assert job is not None and job.status == JobStatus.COMPLETED
        assert job.callback_outcome is not None and job.callback_outcome["error"] == INTERRUPTED_CALLBACK


async def test_recover_requeues_what_the_dead_process_was_running(tmp_path: Path) -> None:
    async with open_url(url(tmp_path / "jobs.db"), tmp_path) as store:
        await store.insert("running", "audio/wav", 10, REQUEST)
        await store.claim(lease_s=60)
        await store.update_progress("running", 40.0, 60)
        await store.recover(0.0)
        running = await store.get("running")
        assert running is not None and running.status == JobStatus.QUEUED and running.progress == 0


async def test_an_older_file_gains_the_new_columns(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as raw:  # the first release's tables, without owner, scope, claimed_at
        raw.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL, created_at REAL NOT NULL,"
                    " updated_at REAL NOT NULL, finished_at REAL, media_type TEXT NOT NULL, audio_path TEXT NOT NULL,"
                    " audio_bytes INTEGER NOT NULL, request TEXT NOT NULL, progress REAL NOT NULL DEFAULT 0,"
                    " error TEXT, result TEXT, attempts INTEGER NOT NULL DEFAULT 0, lease_expires_at REAL,"
                    " callback_started_at REAL, callback_outcome TEXT)")  # fmt: skip
        raw.execute("INSERT INTO jobs (id, status, created_at, updated_at, media_type, audio_path, audio_bytes,"
                    " request) VALUES ('old', 'Completed', 1, 1, 'audio/wav', 'x', 1, '{\"model\": \"tiny.en\"}')")  # fmt: skip
        raw.execute("CREATE TABLE api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, key_sha256 TEXT NOT NULL"
                    " UNIQUE, created_at REAL NOT NULL, last_used_at REAL, revoked_at REAL)")  # fmt: skip
    async with open_url(url(db), tmp_path) as store:
        old = await store.get("old")
        assert old is not None and old.owner is None and old.status == JobStatus.COMPLETED
        await store.add_key("k", "crm", "sha", "admin")
        assert await store.active_keys() == [("k", "sha", "admin")]
