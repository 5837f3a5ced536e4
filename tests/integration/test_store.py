"""The job store on a real SQLite file."""

import sqlite3
from pathlib import Path

from speechsvc.jobs.model import JobRequest, JobStatus
from speechsvc.jobs.store import INTERRUPTED_CALLBACK, open_store

REQUEST = JobRequest(model="tiny.en")
HOOKED = JobRequest(model="tiny.en", callback_url="http://127.0.0.1:9/hook", userdata="u1")


async def test_file_is_wal_with_full_sync(tmp_path: Path) -> None:
    async with open_store(tmp_path / "jobs.db") as store:
        assert (await (await store.db.execute("PRAGMA journal_mode")).fetchone())[0] == "wal"
        assert (await (await store.db.execute("PRAGMA synchronous")).fetchone())[0] == 2  # FULL


async def test_claim_is_fifo_and_exclusive(tmp_path: Path) -> None:
    async with open_store(tmp_path / "jobs.db") as store:
        for job_id in ("a", "b"):
            await store.insert(job_id, "audio/wav", tmp_path / job_id, 10, REQUEST)
        first = await store.claim(lease_s=60)
        second = await store.claim(lease_s=60)
        assert (first.id, second.id) == ("a", "b")
        assert first.status == JobStatus.PENDING and first.attempts == 1
        assert await store.claim(lease_s=60) is None


async def test_expired_lease_is_claimed_again(tmp_path: Path) -> None:
    async with open_store(tmp_path / "jobs.db") as store:
        await store.insert("a", "audio/wav", tmp_path / "a", 10, REQUEST)
        await store.claim(lease_s=-1)  # lease already expired
        again = await store.claim(lease_s=60)
        assert again.id == "a" and again.attempts == 2


async def test_result_survives_reopen_and_callback_is_claimed_once(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    async with open_store(db) as store:
        await store.insert("a", "audio/wav", tmp_path / "a", 10, HOOKED)
        await store.claim(lease_s=60)
        assert await store.complete("a", {"text": "hi"}, has_callback=True)
        assert (await store.get("a")).status == JobStatus.READY
        assert await store.mark_callback_started("a")
        assert not await store.mark_callback_started("a")  # never twice
    with sqlite3.connect(db) as raw:  # durable on disk, readable by any SQLite client
        assert raw.execute("SELECT status, result FROM jobs").fetchone() == ("Ready", '{"text": "hi"}')
    async with open_store(db) as store:
        # the process died during the attempt: the job is closed, the callback not repeated
        assert await store.recover() == []
        job = await store.get("a")
        assert job.status == JobStatus.COMPLETED
        assert job.callback_outcome["error"] == INTERRUPTED_CALLBACK


async def test_recover_requeues_running_and_returns_unsent_callbacks(tmp_path: Path) -> None:
    async with open_store(tmp_path / "jobs.db") as store:
        for job_id in ("running", "ready", "failed", "plain"):
            await store.insert(
                job_id, "audio/wav", tmp_path / job_id, 10, HOOKED if job_id != "plain" else REQUEST
            )
            await store.claim(lease_s=60)
        await store.complete("ready", {"text": "x"}, has_callback=True)
        await store.fail("failed", "boom")
        await store.complete("plain", {"text": "y"}, has_callback=False)
        pending = await store.recover()
        assert sorted(job.id for job in pending) == ["failed", "ready"]
        running = await store.get("running")
        assert running.status == JobStatus.QUEUED and running.progress == 0
        assert (await store.get("plain")).status == JobStatus.COMPLETED


async def test_progress_on_deleted_job_reports_gone(tmp_path: Path) -> None:
    async with open_store(tmp_path / "jobs.db") as store:
        await store.insert("a", "audio/wav", tmp_path / "a", 10, REQUEST)
        await store.claim(lease_s=60)
        assert await store.update_progress("a", 50.0, 60)
        assert (await store.get("a")).progress == 50.0
        await store.delete("a")
        assert not await store.update_progress("a", 60.0, 60)
        assert not await store.complete("a", {}, has_callback=False)
