"""Strict parameters and zero retention (issue 13, items 4 and 5) on the real app with the fake
transcriber: a typo is a 400 naming it, a value the server cannot honour is a 400, and retain=false /
enable_logging=false leave nothing behind once the result is delivered."""

import asyncio
import io
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from speechsvc.api.keys import STORE
from tests.conftest import corpus
from tests.integration.helpers import poll_until
from tests.receiver import CallbackReceiver
from tests.test_hardening.test_rejections import expect_error

STEREO = corpus("stereo_diarization.wav").read_bytes()


async def post(client: TestClient, **params: str) -> Any:
    return await client.post("/v1/transcribe", data=io.BytesIO(STEREO), params=params,
                             headers={"Content-Type": "audio/wav"})  # fmt: skip


def form(**fields: str) -> aiohttp.FormData:
    data = aiohttp.FormData()
    for name, value in fields.items():
        data.add_field(name, value)
    data.add_field("file", io.BytesIO(STEREO), filename="call.wav", content_type="audio/wav")
    return data


async def test_a_typo_is_a_400_naming_the_parameter(make_client: Any) -> None:
    client = await make_client()
    body = await expect_error(await post(client, chanel_layout="0"), 400, "unknown_parameter")
    assert body["error"]["param"] == "chanel_layout" and "channel_layout" in body["error"]["message"]
    job = (await (await post(client)).json())["request_id"]
    await poll_until(client, job, {"Completed"})
    await expect_error(
        await client.get(f"/v1/transcribe/{job}", params={"formt": "json"}), 400, "unknown_parameter"
    )
    await expect_error(
        await client.delete(f"/v1/transcribe/{job}", params={"force": "1"}), 400, "unknown_parameter"
    )
    await expect_error(await client.post("/v1/audio/transcriptions", data=form(modle="whisper-1")), 400,
                       "unknown_parameter")  # fmt: skip
    created = await client.post(
        "/v1/audio/uploads", json={"file_name": "a", "mime_type": "audio/wav", "size": 3}
    )
    await expect_error(created, 400, "unknown_parameter")
    jobs = await client.post("/v1/transcription-jobs", data=form(), params={"taks": "translate"})
    await expect_error(jobs, 400, "unknown_parameter")


@pytest.mark.parametrize(
    ("params", "code"),
    [({"format": "txt,line_char_limit:20"}, "invalid_request"), ({"format": "json,max_lines:2"}, "invalid_request"),
     ({"crosstalk": "loud"}, "invalid_request"), ({"num_speakers": "99"}, "invalid_request"),
     ({"min_speakers": "x"}, "invalid_request")],
)  # fmt: skip
async def test_what_cannot_be_honoured_is_a_400(make_client: Any, params: dict[str, str], code: str) -> None:
    client = await make_client()
    await expect_error(await post(client, **params), 400, code)


async def test_what_can_be_honoured_is_accepted(make_client: Any) -> None:
    client = await make_client()
    for params in (
        {"diarize": "false", "num_speakers": "2"},
        {"crosstalk": "off"},
        {"format": "srt,max_lines:2"},
    ):
        assert (await post(client, **params)).status == 202, params


async def test_openai_and_seed_001_fields(make_client: Any) -> None:
    client = await make_client()
    ok = await client.post("/v1/audio/transcriptions", data=form(
        model="whisper-1", tag_audio_events="true", orq="{}", diarize="false", num_speakers="2",
        response_format="verbose_json", **{"timestamp_granularities[0]": "word"}))  # fmt: skip
    assert ok.status == 200, await ok.text()
    assert (await ok.json())["words"]  # seed 001's indexed list is read as timestamp_granularities[]
    for fields, code in (({"stream": "true"}, "unsupported_value"),
                         ({"timestamps_granularity": "character"}, "unsupported_value"),
                         ({"chunking_strategy": "server_vad"}, "unsupported_value")):  # fmt: skip
        await expect_error(await client.post("/v1/audio/transcriptions", data=form(**fields)), 400, code)


async def test_retain_false_deletes_the_job_after_the_first_result(make_client: Any, tmp_path: Path) -> None:
    client = await make_client()
    job = (await (await post(client, retain="false")).json())["request_id"]
    while (await client.head(f"/v1/transcribe/{job}")).headers["x-status"] != "Completed":  # HEAD: no result
        await asyncio.sleep(0.05)
    first = await client.get(f"/v1/transcribe/{job}", params={"format": "txt"})
    assert first.status == 200 and "word0." in await first.text()
    assert (await client.get(f"/v1/transcribe/{job}")).status == 404
    assert list((tmp_path / "data" / "audio").iterdir()) == []
    kept = (await (await post(client)).json())["request_id"]  # the default keeps it
    await poll_until(client, kept, {"Completed"})
    for _ in range(2):
        assert (await client.get(f"/v1/transcribe/{kept}")).status == 200


async def test_retain_false_with_a_callback_deletes_after_the_attempt(make_client: Any) -> None:
    client = await make_client()
    with CallbackReceiver() as receiver:
        job = (await (await post(client, retain="false", callback=receiver.url, format="txt")).json())[
            "request_id"
        ]
        (call,) = await receiver.arrived(1)
    assert b"word0." in call.body
    for _ in range(100):  # the attempt is recorded, then the job is deleted
        if (await client.get(f"/v1/transcribe/{job}")).status == 404:
            break
        await asyncio.sleep(0.05)
    assert (await client.get(f"/v1/transcribe/{job}")).status == 404


async def test_enable_logging_false_leaves_nothing(make_client: Any, tmp_path: Path) -> None:
    client = await make_client()
    answer = await client.post(
        "/v1/audio/transcriptions", data=form(enable_logging="false", response_format="text")
    )
    assert answer.status == 200 and "word0." in await answer.text()
    job = answer.headers["x-requestid"]
    assert (await client.get(f"/v1/transcribe/{job}")).status == 404
    assert list((tmp_path / "data" / "audio").iterdir()) == []
    created = await (await client.post("/v1/transcription-jobs", data=form(retain="false"))).json()
    for _ in range(200):
        result = await client.get(f"/v1/transcription-jobs/{created['id']}/result")
        if result.status == 200:
            break
        await asyncio.sleep(0.05)
    assert result.status == 200
    assert (await client.get(f"/v1/transcription-jobs/{created['id']}")).status == 404


async def test_retain_false_webhook_deletes_the_job_once_delivered(make_client: Any) -> None:
    client = await make_client()
    with CallbackReceiver() as receiver:
        created = await client.post(
            "/v1/transcription-jobs", data=form(retain="false", callback_url=receiver.url)
        )
        job = (await created.json())["id"]
        (call,) = await receiver.arrived(1)
    assert b"word0." in call.body  # the event carried the result: that was the delivery
    for _ in range(100):
        if (await client.get(f"/v1/transcription-jobs/{job}")).status == 404:
            break
        await asyncio.sleep(0.05)
    assert (await client.get(f"/v1/transcription-jobs/{job}")).status == 404
    (delivery,) = await client.app[STORE].webhook_for_job(job)
    assert delivery.state == "delivered" and delivery.payload == ""  # no copy of the result kept
