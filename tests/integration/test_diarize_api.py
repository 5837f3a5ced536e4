"""Diarization through the real app (issue 11), with the fake transcriber (one word a second) and the real
speaker model on a mono call mixed from two real voices: every format and dialect names the speakers,
the speakers follow the true turns, and every bad parameter is a 400 naming it."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

import speechsvc.diarize
from tests.conftest import write_wav
from tests.diarize_calls import MixedCall, mixed_call
from tests.integration.helpers import poll_until, post_audio
from tests.test_hardening.test_rejections import expect_error


@pytest.fixture(scope="module")
def call() -> MixedCall:
    return mixed_call(("jfk", "m3"), min_turn_s=2.0, length_s=30.0)


@pytest.fixture
def call_wav(call: MixedCall, tmp_path: Path) -> Path:
    return write_wav(tmp_path / "mixed.wav", [call.audio])


def truth_at(call: MixedCall, at_s: float) -> str | None:
    return next((name for start, end, name in call.turns if start <= at_s < end), None)


def form(path: Path, **fields: str) -> aiohttp.FormData:
    data = aiohttp.FormData()
    for name, value in fields.items():
        data.add_field(name, value)
    data.add_field("file", io.BytesIO(path.read_bytes()), filename="call.wav", content_type="audio/wav")
    return data


async def diarized_job(client: TestClient, path: Path, **params: str) -> tuple[str, dict[str, Any]]:
    response = await post_audio(client, path, diarize="true", format="json", **params)
    assert response.status == 202, await response.text()
    job = (await response.json())["request_id"]
    await poll_until(client, job, {"Completed"})
    result = await (await client.get(f"/v1/transcribe/{job}", params={"format": "json"})).json()
    return job, result


async def test_json_carries_a_speaker_on_every_segment_word_and_turn(
    make_client: Any, call: MixedCall, call_wav: Path
) -> None:
    client = await make_client()
    _, result = await diarized_job(client, call_wav)
    (channel,) = result["channels"]
    segments = channel["segments"]
    assert {s["speaker"] for s in segments} == {"spk_0", "spk_1"} and segments[0]["speaker"] == "spk_0"
    assert all(w["speaker"] == s["speaker"] for s in segments for w in s["words"])
    assert all("speaker" in entry for entry in result["timeline"])
    assert result["speakers"] == {channel["label"]: ["spk_0", "spk_1"]}
    assert set(result["stats"]["talk_time_s"]) == {"spk_0", "spk_1"}
    # the speakers follow the true turns: the fake's one-second words, each at its middle
    names: dict[str, set[str]] = {}
    for segment in segments:
        for word in segment["words"]:
            if (truth := truth_at(call, (word["start"] + word["end"]) / 2)) is not None:
                names.setdefault(segment["speaker"], set()).add(truth)
    assert names == {"spk_0": {"jfk"}, "spk_1": {"m3"}}
    # segments are cut where the speaker changes: a change between two words starts a new segment
    assert len(segments) >= len(call.turns) - 1
    assert result["text"].splitlines()[0].startswith("spk_0: ")


async def test_every_format_names_the_speakers(make_client: Any, call_wav: Path) -> None:
    client = await make_client()
    job, _ = await diarized_job(client, call_wav)

    async def get(format: str) -> str:
        response = await client.get(f"/v1/transcribe/{job}", params={"format": format})
        assert response.status == 200
        return await response.text()

    assert set(re.findall(r'speaker="([^"]+)"', await get("xml"))) == {"spk_0", "spk_1"}
    assert "[spk_0] " in await get("srt") and "[spk_1] " in await get("srt")
    assert "<v spk_0>" in await get("vtt") and "<v spk_1>" in await get("vtt")
    lines = (await get("txt")).splitlines()
    assert lines and all(re.match(r"spk_[01]: ", line) for line in lines)
    page = await get("html")
    assert ">spk_0</span>" in page and ">spk_1</text>" in page  # the turns, and the talk-time chart


async def test_without_word_timestamps_segments_still_split(make_client: Any, call_wav: Path) -> None:
    client = await make_client()
    _, result = await diarized_job(client, call_wav, word_timestamps="false", num_speakers="2")
    segments = result["channels"][0]["segments"]
    assert {s["speaker"] for s in segments} == {"spk_0", "spk_1"} and all(s["words"] == [] for s in segments)


async def test_openai_dialect(make_client: Any, call_wav: Path) -> None:
    client = await make_client()
    verbose = await client.post("/v1/audio/transcriptions", data=form(
        call_wav, response_format="verbose_json", diarize="true", num_speakers="2",
        timestamp_granularities="word,segment"))  # fmt: skip
    assert verbose.status == 200, await verbose.text()
    body = await verbose.json()
    assert {s["speaker"] for s in body["segments"]} == {"spk_0", "spk_1"}
    assert {w["speaker"] for w in body["words"]} == {"spk_0", "spk_1"}
    diarized = await client.post(
        "/v1/audio/transcriptions", data=form(call_wav, response_format="diarized_json")
    )
    assert diarized.status == 200, await diarized.text()
    body = json.loads(await diarized.text())
    assert set(body) == {"task", "duration", "text", "segments", "usage"}
    assert {s["type"] for s in body["segments"]} == {"transcript.text.segment"}
    assert next(s["speaker"] for s in body["segments"]) == "A" and {
        s["speaker"] for s in body["segments"]
    } == {"A", "B"}
    assert body["text"] == " ".join(s["text"] for s in body["segments"])


@pytest.mark.parametrize(
    ("params", "param"),
    [({"num_speakers": "0"}, "num_speakers"), ({"num_speakers": "33"}, "num_speakers"),
     ({"num_speakers": "two"}, "num_speakers"), ({"num_speakers": "1.5"}, "num_speakers"),
     ({"min_speakers": "3", "max_speakers": "2"}, "min_speakers"),
     ({"num_speakers": "5", "max_speakers": "4"}, "num_speakers"),
     ({"max_speakers": "40"}, "max_speakers")],
)  # fmt: skip
async def test_bad_counts_are_a_400_naming_the_parameter(
    make_client: Any, call_wav: Path, params: dict[str, str], param: str
) -> None:
    client = await make_client()
    await expect_error(
        await post_audio(client, call_wav, diarize="true", **params), 400, "invalid_request", param
    )
    openai = await client.post("/v1/audio/transcriptions", data=form(call_wav, diarize="true", **params))
    await expect_error(openai, 400, "invalid_request", param)


async def test_diarized_json_needs_diarization_and_a_transcription(make_client: Any, call_wav: Path) -> None:
    client = await make_client()
    refused = await client.post("/v1/audio/transcriptions", data=form(call_wav, response_format="diarized_json",
                                                                      diarize="false"))  # fmt: skip
    await expect_error(refused, 400, "invalid_request", "diarize")
    translated = await client.post(
        "/v1/audio/translations", data=form(call_wav, response_format="diarized_json")
    )
    await expect_error(translated, 400, "invalid_request", "response_format")


async def test_without_the_extra_diarize_is_a_400_saying_how_to_install(
    make_client: Any, call_wav: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(speechsvc.diarize, "available", lambda: False)
    client = await make_client()
    body = await expect_error(await post_audio(client, call_wav, diarize="true"), 400, "diarization_unavailable",
                              "diarize")  # fmt: skip
    assert "pip install" in body["error"]["message"] and "speechsvc[diarize]" in body["error"]["message"]
    openai = await client.post(
        "/v1/audio/transcriptions", data=form(call_wav, response_format="diarized_json")
    )
    await expect_error(openai, 400, "diarization_unavailable", "diarize")
    assert (await post_audio(client, call_wav, diarize="false")).status == 202  # off: nothing needed
