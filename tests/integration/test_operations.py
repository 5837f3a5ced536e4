"""Operations: /metrics in Prometheus text, retention, --keep-audio, one structured log line per request
and per job transition."""

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import corpus
from tests.integration.helpers import poll_until
from tests.receiver import CallbackReceiver

ClientFactory = Callable[..., Awaitable[TestClient]]
STEREO = corpus("stereo_diarization.wav").read_bytes()


async def submit(client: TestClient, **params: str) -> Any:
    return await client.post("/v1/transcribe", data=io.BytesIO(STEREO), params=params,
                             headers={"Content-Type": "audio/wav"})  # fmt: skip


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics(make_client: Any) -> None:
    client = await make_client()
    with CallbackReceiver() as receiver:
        done = await submit(client, wait="30", callback=receiver.url)
        await receiver.arrived(1)
        await poll_until(client, done.headers["x-requestid"], {"Completed"})
    await submit(client, channel_layout="9")  # a 422
    response = await client.get("/metrics")
    assert response.status == 200 and response.content_type == "text/plain"
    values = samples(await response.text())
    assert values[("speechsvc_jobs", (("state", "Completed"),))] == 1
    assert values[("speechsvc_jobs", (("state", "Queued"),))] == 0
    assert values[("speechsvc_queue_depth", ())] == 0
    assert values[("speechsvc_audio_seconds_transcribed_total", ())] == pytest.approx(10.0)
    assert values[("speechsvc_realtime_factor_count", ())] == 1
    assert values[("speechsvc_jobs_finished_total", (("status", "Completed"),))] == 1
    assert values[("speechsvc_callbacks_total", (("outcome", "delivered"),))] == 1
    route = (("method", "POST"), ("route", "/v1/transcribe"))
    assert values[("speechsvc_http_responses_total", (*route, ("status", "200")))] == 1
    assert values[("speechsvc_http_responses_total", (*route, ("status", "422")))] == 1
    assert all(name.startswith("speechsvc_") for name, _ in values)


async def test_retention_deletes_finished_jobs_and_their_audio(make_client: Any, tmp_path: Path) -> None:
    client = await make_client(retention_h=1 / 3600, keep_audio=True)  # one second, audio kept till then
    response = await submit(client, wait="30")
    request_id = response.headers["x-requestid"]
    assert response.status == 200 and (tmp_path / "data" / "audio" / request_id).exists()
    for _ in range(100):
        if (await client.get(f"/v1/transcribe/{request_id}")).status == 404:
            break
        await asyncio.sleep(0.1)
    assert (await client.get(f"/v1/transcribe/{request_id}")).status == 404
    assert not (tmp_path / "data" / "audio" / request_id).exists()


async def test_audio_is_deleted_once_the_result_is_stored(make_client: Any, tmp_path: Path) -> None:
    client = await make_client()
    response = await submit(client, wait="30")
    assert response.status == 200
    assert not (tmp_path / "data" / "audio" / response.headers["x-requestid"]).exists()
    assert (await client.get(f"/v1/transcribe/{response.headers['x-requestid']}")).status == 200


async def test_structured_log_lines(make_client: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="speechsvc")
    client = await make_client()
    response = await client.post("/v1/transcribe", data=io.BytesIO(STEREO), params={"wait": "30"},
                                 headers={"Content-Type": "audio/wav", "X-Request-ID": "trace-77"})  # fmt: skip
    request_id = response.headers["x-requestid"]
    lines = [record.getMessage() for record in caplog.records]
    http_lines = [
        line for line in lines if line.startswith("event=http ") and "x_request_id=trace-77" in line
    ]
    assert len(http_lines) == 1
    assert f"request_id={request_id}" in http_lines[0] and "status=200" in http_lines[0]
    job_lines = [
        line for line in lines if line.startswith("event=job ") and f"request_id={request_id}" in line
    ]
    assert [line.split("status=")[1].split()[0] for line in job_lines] == ["Pending", "Completed"]
    assert all("x_request_id=trace-77" in line for line in job_lines)
