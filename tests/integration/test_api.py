"""Job life cycle through the real app, real SQLite and real PyAV; a slow fake transcriber makes the
intermediate states observable."""

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from speechsvc.app import create_app
from tests.conftest import corpus, fake_registry, long_stereo_call, make_config
from tests.integration.helpers import poll_until, post_audio

ClientFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def slow_client(aiohttp_client: ClientFactory, tmp_path: Path) -> TestClient:
    app = create_app(make_config(tmp_path), registry=fake_registry(tmp_path, delay_s=0.05))
    return await aiohttp_client(app)


async def test_submit_answers_202_with_headers_and_location(slow_client: TestClient) -> None:
    response = await post_audio(slow_client, corpus("stereo_diarization.wav"), userdata="call-42")
    assert response.status == 202
    body = await response.json()
    request_id = body["request_id"]
    assert body == {"request_id": request_id, "success": True, "error": None, "status": "Queued"}
    assert response.headers["x-requestid"] == request_id
    assert response.headers["x-status"] in ("Received", "Queued")
    assert response.headers["Location"] == f"/v1/transcribe/{request_id}"
    assert response.headers["X-Request-ID"]


async def test_polling_goes_through_the_states_with_growing_progress(
    slow_client: TestClient, tmp_path: Path
) -> None:
    call = long_stereo_call(tmp_path / "call.wav", repeats=8)  # 40 s a channel, 80 fake segments
    response = await post_audio(slow_client, call, userdata="u-1")
    request_id = (await response.json())["request_id"]
    seen_status: list[str] = []
    progress: list[int] = []
    while True:
        poll = await slow_client.get(f"/v1/transcribe/{request_id}")
        status = poll.headers["x-status"]
        if not seen_status or seen_status[-1] != status:
            seen_status.append(status)
        assert poll.headers["x-userdata"] == "u-1"
        if status == "Completed":
            assert poll.status == 200
            break
        assert poll.status == 204 and await poll.read() == b""
        progress.append(int(poll.headers["x-progress"]))
        await asyncio.sleep(0.1)
    assert seen_status[-2:] == ["Pending", "Completed"]
    assert progress == sorted(progress)  # never goes back
    assert any(0 < p < 100 for p in progress)
    assert poll.headers["x-progress"] == "100"


async def test_get_rerenders_in_any_format_and_head_has_headers_only(slow_client: TestClient) -> None:
    response = await post_audio(slow_client, corpus("stereo_diarization.wav"), format="srt", wait=30)
    assert response.status == 200 and response.content_type == "application/x-subrip"
    request_id = response.headers["x-requestid"]
    default = await slow_client.get(f"/v1/transcribe/{request_id}")
    assert (await default.text()).startswith("1\n00:00:00,000 --> ")  # the job's own format
    as_json = await slow_client.get(f"/v1/transcribe/{request_id}", params={"format": "json"})
    assert (await as_json.json())["status"] == "Completed"
    as_vtt = await slow_client.get(f"/v1/transcribe/{request_id}", params={"format": "vtt"})
    assert (await as_vtt.text()).startswith("WEBVTT")
    head = await slow_client.head(f"/v1/transcribe/{request_id}")
    assert head.status == 200 and await head.read() == b""
    assert head.headers["x-status"] == "Completed" and head.headers["x-progress"] == "100"


async def test_wait_times_out_into_a_normal_202(slow_client: TestClient, tmp_path: Path) -> None:
    call = long_stereo_call(tmp_path / "call.wav", repeats=8)
    response = await post_audio(slow_client, call, wait=0.3)
    assert response.status == 202


async def test_delete_running_job_stops_it_and_next_job_runs(slow_client: TestClient, tmp_path: Path) -> None:
    call = long_stereo_call(tmp_path / "call.wav", repeats=8)
    first = (await (await post_audio(slow_client, call)).json())["request_id"]
    second = (await (await post_audio(slow_client, corpus("stereo_diarization.wav"))).json())["request_id"]
    await poll_until(slow_client, first, {"Pending"})
    deleted = await slow_client.delete(f"/v1/transcribe/{first}")
    assert deleted.status == 204
    assert (await slow_client.get(f"/v1/transcribe/{first}")).status == 404
    done = await poll_until(slow_client, second, {"Completed"}, timeout_s=30)
    assert done.status == 200 and "word0" in await done.text()
    audio_dir = tmp_path / "data" / "audio"
    assert not (audio_dir / first).exists() and not (audio_dir / second).exists()
    assert (await slow_client.delete(f"/v1/transcribe/{first}")).status == 404


async def test_request_id_is_echoed(slow_client: TestClient) -> None:
    response = await slow_client.get("/v1/transcribe/unknown", headers={"X-Request-ID": "trace-123"})
    assert response.status == 404
    assert response.headers["X-Request-ID"] == "trace-123"
    assert (await response.json())["request_id"] == "trace-123"


async def test_models_and_health(slow_client: TestClient) -> None:
    assert (await slow_client.get("/healthz")).status == 200
    assert (await slow_client.get("/readyz")).status == 200
    models = await (await slow_client.get("/v1/models")).json()
    assert models["object"] == "list"
    assert models["data"][0]["id"] == "tiny.en" and models["data"][0]["default"] is True


async def test_concurrent_submissions_while_the_worker_runs(slow_client: TestClient, tmp_path: Path) -> None:
    """Submits racing the worker's claims and progress writes on the shared SQLite connection: every
    submission is answered 202 and every job completes (a 500 here once hid an inserted job)."""
    body = corpus("stereo_diarization.wav").read_bytes()

    async def submit() -> str:
        response = await slow_client.post("/v1/transcribe", data=body, headers={"Content-Type": "audio/wav"})
        assert response.status == 202, await response.text()
        return str(response.headers["x-requestid"])

    ids = await asyncio.gather(*(submit() for _ in range(30)))
    assert len(set(ids)) == 30
    for request_id in ids:
        assert (await poll_until(slow_client, request_id, {"Completed"}, timeout_s=60)).status == 200
