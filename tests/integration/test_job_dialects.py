"""The async job dialects on the real app (real SQLite, real PyAV, real isolation; a fake transcriber):
transcription jobs (seed 002), resumable uploads and audio jobs (seed 000), signed retried webhooks."""

import hashlib
import hmac
import io
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from standardwebhooks.webhooks import Webhook

from tests.conftest import FIXTURES, corpus, fake_registry, long_stereo_call, make_config
from tests.receiver import CallbackReceiver
from tests.test_hardening.test_rejections import expect_error

ClientFactory = Callable[..., Awaitable[TestClient]]
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def seed_000_verify(raw_body: str, sig_header: str, secret: str) -> bool:
    """Seed 000's verify(), line by line in Python: what a receiver written against it runs."""
    parts = dict(part.split("=", 1) for part in sig_header.split(","))
    timestamp = int(parts["t"], 10)
    if abs(time.time() - timestamp) > 300:
        raise ValueError("timestamp too old")
    expected = hmac.new(secret.encode(), f"{timestamp}.{raw_body}".encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), parts["v1"].encode()):
        raise ValueError("bad signature")
    return True


def form(path: Path, **fields: str) -> aiohttp.FormData:
    data = aiohttp.FormData()
    for name, value in fields.items():
        data.add_field(name, value)
    data.add_field("file", io.BytesIO(path.read_bytes()), filename=path.name, content_type="audio/wav")
    return data


async def wait_status(
    client: TestClient, path: str, statuses: set[str], timeout_s: float = 30
) -> dict[str, Any]:
    import asyncio
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        view = await (await client.get(path)).json()
        if view["status"] in statuses:
            return dict(view)
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} never reached {statuses}")


async def test_transcription_job_life_cycle(make_client: Any, tmp_path: Path) -> None:
    client = await make_client(delay_s=0.05)
    long_call = long_stereo_call(tmp_path / "call.wav", repeats=8)
    running = await (
        await client.post("/v1/transcription-jobs", data=form(long_call, model="whisper-1"))
    ).json()
    queued_response = await client.post("/v1/transcription-jobs", data=form(corpus("stereo_diarization.wav")))
    assert queued_response.status == 202
    queued = await queued_response.json()
    done_later = await (
        await client.post(
            "/v1/transcription-jobs", data=form(corpus("stereo_diarization.wav"), response_format="text")
        )
    ).json()
    assert running["status"] == "queued" and running["object"] == "transcription.job"
    await wait_status(client, f"/v1/transcription-jobs/{running['id']}", {"running"})
    not_ready = await client.get(f"/v1/transcription-jobs/{running['id']}/result")
    await expect_error(not_ready, 409, "result_not_ready")
    # cancel a queued job, then the running one
    canceled = await (await client.post(f"/v1/transcription-jobs/{queued['id']}/cancel")).json()
    assert canceled["status"] == "canceled"
    canceled = await (await client.post(f"/v1/transcription-jobs/{running['id']}/cancel")).json()
    assert canceled["status"] == "canceled"
    finished = await wait_status(client, f"/v1/transcription-jobs/{done_later['id']}", {"completed"})
    assert finished["progress"] == 100 and finished["completed_at"] >= finished["created_at"]
    result = await client.get(f"/v1/transcription-jobs/{done_later['id']}/result")
    assert result.status == 200 and result.content_type == "text/plain" and "word0." in await result.text()
    again = await client.post(f"/v1/transcription-jobs/{done_later['id']}/cancel")
    await expect_error(again, 409, "not_cancelable")
    assert (await (await client.get(f"/v1/transcription-jobs/{running['id']}")).json())[
        "status"
    ] == "canceled"
    await expect_error(
        await client.get(f"/v1/transcription-jobs/{running['id']}/result"), 409, "result_not_ready"
    )
    assert not (tmp_path / "data" / "audio" / running["id"]).exists()
    await expect_error(await client.get("/v1/transcription-jobs/nope"), 404, "request_not_found")


async def test_job_form_errors(make_client: Any) -> None:
    client = await make_client()
    bad = await client.post(
        "/v1/transcription-jobs", data=form(corpus("stereo_diarization.wav"), response_format="pdf")
    )
    await expect_error(bad, 400, "invalid_request", "response_format")
    no_file = aiohttp.FormData(default_to_multipart=True)
    no_file.add_field("model", "whisper-1")
    await expect_error(
        await client.post("/v1/audio/transcriptions", data=no_file), 400, "missing_body", "file"
    )
    unknown = await client.post(
        "/v1/audio/transcriptions", data=form(corpus("stereo_diarization.wav"), model="gpt-9")
    )
    await expect_error(unknown, 404, "model_not_found", "model")


async def upload(client: TestClient, data: bytes, mime_type: str = "video/x-matroska") -> dict[str, Any]:
    response = await client.post(
        "/v1/audio/uploads", json={"file_name": "call.mkv", "mime_type": mime_type, "size_bytes": len(data)}
    )
    assert response.status == 201
    return dict(await response.json())


async def put(client: TestClient, created: dict[str, Any], first: int, body: bytes, total: int) -> Any:
    url = created["upload_url"].split(str(client.make_url("")).rstrip("/"))[-1]
    headers = {"Content-Range": f"bytes {first}-{first + len(body) - 1}/{total}"}
    return await client.put(url, data=body, headers=headers)


async def test_upload_in_pieces_then_job_with_signed_retried_webhook(make_client: Any) -> None:
    client = await make_client(webhook_secret=SECRET, webhook_retry_base_s=0.2)
    data = (FIXTURES / "two_streams.mkv").read_bytes()
    created = await upload(client, data)
    assert created["status"] == "pending" and created["upload_url"].startswith("http://")
    pieces = [(0, data[:20000]), (20000, data[20000:40000]), (40000, data[40000:])]
    assert (await put(client, created, *pieces[0], len(data))).status == 200
    wrong = await put(client, created, *pieces[2], len(data))  # skips a piece
    body = await expect_error(wrong, 409, "offset_mismatch")
    assert body["received_bytes"] == 20000
    incomplete = await client.post(f"/v1/audio/uploads/{created['id']}/complete")
    assert (await expect_error(incomplete, 409, "upload_incomplete"))["received_bytes"] == 20000
    for first, piece in pieces[1:]:
        assert (await put(client, created, first, piece, len(data))).status == 200
    status = await (await client.get(f"/v1/audio/uploads/{created['id']}")).json()
    assert status["received_bytes"] == len(data) and status["status"] == "uploading"
    digest = hashlib.sha256(data).hexdigest()
    bad_sum = await client.post(f"/v1/audio/uploads/{created['id']}/complete", json={"sha256": "0" * 64})
    await expect_error(bad_sum, 400, "invalid_request", "sha256")
    for _ in range(2):  # idempotent
        completed = await client.post(f"/v1/audio/uploads/{created['id']}/complete", json={"sha256": digest})
        assert completed.status == 200 and (await completed.json())["status"] == "completed"
    with CallbackReceiver(statuses=[500, 200]) as receiver:
        job = await client.post(
            "/v1/audio/jobs",
            json={
                "upload_id": created["id"],
                "channel_layout": "1.0,1.1",
                "format": "json",
                "callback_url": receiver.url,
            },
        )
        assert job.status == 202
        job_view = await job.json()
        first, second = await receiver.arrived(2)
    finished = await wait_status(client, f"/v1/audio/jobs/{job_view['id']}", {"completed"})
    assert [c["label"] for c in finished["result"]["channels"]] == ["1.0", "1.1"]
    assert first.headers["webhook-id"] == second.headers["webhook-id"]  # the same message, retried
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"] or (
        first.headers["webhook-timestamp"] == second.headers["webhook-timestamp"]
    )
    for attempt in (first, second):
        payload = Webhook(SECRET).verify(attempt.body, attempt.headers)
        assert payload["type"] == "transcription.completed"
        assert seed_000_verify(attempt.body.decode(), attempt.headers["x-orpheus-signature"], SECRET)
        with pytest.raises(ValueError):
            seed_000_verify(attempt.body.decode() + " ", attempt.headers["x-orpheus-signature"], SECRET)
        assert payload["data"]["id"] == job_view["id"] and payload["data"]["status"] == "completed"
    await expect_error(await client.get("/v1/audio/jobs/nope"), 404, "request_not_found")


async def test_upload_rules(make_client: Any, tmp_path: Path) -> None:
    client = await make_client(max_upload_bytes=100_000)
    too_big = await client.post(
        "/v1/audio/uploads", json={"file_name": "a.wav", "mime_type": "audio/wav", "size_bytes": 100_001}
    )
    await expect_error(too_big, 413, "file_too_large", "size_bytes")
    wrong_type = await client.post(
        "/v1/audio/uploads", json={"file_name": "a.txt", "mime_type": "text/plain", "size_bytes": 10}
    )
    await expect_error(wrong_type, 415, "unsupported_media_type")
    await expect_error(await client.post("/v1/audio/uploads", data=b"{no"), 400, "invalid_request")
    data = (FIXTURES / "jfk.mp3").read_bytes()
    created = await upload(client, data, "audio/mpeg")
    bad_token = (
        created["upload_url"].split("?")[0].split(str(client.make_url("")).rstrip("/"))[-1] + "?token=x"
    )
    await expect_error(await client.put(bad_token, data=data), 401, "invalid_api_key")
    job_early = await client.post("/v1/audio/jobs", json={"upload_id": created["id"]})
    await expect_error(job_early, 409, "upload_not_completed")
    short = await put(client, created, 0, data[:1000], len(data))
    assert short.status == 200
    whole = created["upload_url"].split(str(client.make_url("")).rstrip("/"))[-1]
    assert (await client.put(whole, data=data)).status == 200  # no Content-Range: the whole file again
    assert (await (await client.post(f"/v1/audio/uploads/{created['id']}/complete")).json())[
        "status"
    ] == "completed"
    job = await client.post("/v1/audio/jobs", json={"upload_id": created["id"], "format": "txt"})
    finished = await wait_status(client, f"/v1/audio/jobs/{(await job.json())['id']}", {"completed"})
    assert "word0." in finished["result"]


async def test_uploads_expire_and_free_their_storage(make_client: Any, tmp_path: Path) -> None:
    client = await make_client(upload_expiry_h=1 / 3600)  # one second
    data = (FIXTURES / "jfk.mp3").read_bytes()
    created = await upload(client, data, "audio/mpeg")
    assert (await put(client, created, 0, data, len(data))).status == 200
    stored = tmp_path / "data" / "uploads" / f"{created['id']}.bin"
    assert stored.stat().st_size == len(data)
    view = await wait_status(client, f"/v1/audio/uploads/{created['id']}", {"expired"}, timeout_s=10)
    assert view["status"] == "expired" and not stored.exists()
    await expect_error(await put(client, created, 0, data, len(data)), 404, "upload_not_found")


async def test_transcription_job_webhook_on_failure_and_cancel(make_client: Any, tmp_path: Path) -> None:
    client = await make_client(delay_s=0.05, max_duration_s=30.0, webhook_retry_base_s=0.1)
    with CallbackReceiver() as receiver:
        failing = form(FIXTURES / "jfk_x8_streamed.mkv", callback_url=receiver.url)
        failed = await (await client.post("/v1/transcription-jobs", data=failing)).json()
        (event,) = await receiver.arrived(1)
        assert json.loads(event.body)["type"] == "transcription.failed"
        assert "30 s" in json.loads(event.body)["data"]["error"]["message"]
        long_call = long_stereo_call(tmp_path / "call.wav", repeats=5)  # 25 s: under the 30 s cap
        running = await (
            await client.post("/v1/transcription-jobs", data=form(long_call, callback_url=receiver.url))
        ).json()
        await wait_status(client, f"/v1/transcription-jobs/{running['id']}", {"running"})
        await client.post(f"/v1/transcription-jobs/{running['id']}/cancel")
        _, canceled = await receiver.arrived(2)
    assert json.loads(canceled.body)["type"] == "transcription.canceled"
    assert "webhook-signature" not in canceled.headers  # no secret configured: unsigned
    assert failed["id"] != running["id"]


async def test_webhook_delivery_survives_a_restart(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    """A webhook answered 500 is retried by the next process on the same data dir, same webhook-id."""
    from speechsvc.app import create_app

    config = make_config(tmp_path, webhook_secret=SECRET, webhook_retry_base_s=1.0)
    with CallbackReceiver(statuses=[500, 200]) as receiver:
        first_app = await aiohttp_client(create_app(config, registry=fake_registry(tmp_path)))
        job = await first_app.post(
            "/v1/transcription-jobs", data=form(corpus("stereo_diarization.wav"), callback_url=receiver.url)
        )
        assert job.status == 202
        (first,) = await receiver.arrived(1)
        await first_app.close()  # the service stops before the retry is due
        second_app = await aiohttp_client(create_app(config, registry=fake_registry(tmp_path)))
        _, second = await receiver.arrived(2, timeout_s=30)
        await second_app.close()
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    for attempt in (first, second):
        assert Webhook(SECRET).verify(attempt.body, attempt.headers)["type"] == "transcription.completed"
