"""Redaction through every dialect and format of the real app (real SQLite, real PyAV), with a scripted
transcriber whose words carry a card number, its expiry and code, and ordinary numbers: the markers in
every rendering, `redactions` in the JSON, the redacted copy of the audio and its endpoint, the 400s,
ownership and deletion, and no trace of the values in the data dir."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import numpy.typing as npt
import pytest
from aiohttp.test_utils import TestClient

from speechsvc.access.auth import create_key
from speechsvc.api.keys import STORE
from speechsvc.api.params import parse_redact_json
from speechsvc.app import create_app
from speechsvc.asr.engine import ChannelTranscript, ProgressFn, Segment, TranscribeOptions, Word
from speechsvc.asr.models import ModelRegistry
from speechsvc.audio.decode import decode_channels
from speechsvc.audio.layout import ChannelRef
from speechsvc.errors import InvalidRequest
from speechsvc.redact import Redaction
from speechsvc.redact.audio import AUDIO_PAD_S
from tests.conftest import make_config, write_wav
from tests.integration.helpers import post_audio
from tests.test_hardening.test_rejections import expect_error

RATE = 16000
DURATION_S = 12
SECRETS = ("4539", "1488", "0343", "6467", "12/27", "321")
SAID = {  # channel amplitude (how the transcriber tells the channels apart) -> segments of (start, word)
    1: [[(0.5, "Card"), (0.9, "number,"), (1.3, "please?")]],
    2: [
        [(2.0, "It's"), (2.4, "4539"), (2.8, "1488"), (3.2, "0343"), (3.6, "6467.")],
        [(6.0, "Expiry"), (6.4, "12/27,"), (6.8, "code"), (7.2, "321,"), (7.6, "paid"), (8.0, "$45.00.")],
    ],
}
CARD_SPAN = (2.4, 3.9)


class ScriptedTranscriber:
    """The words of SAID for a whole channel (told apart by its amplitude, 0.1 or 0.2); nothing for a clip."""

    name = "tiny.en"
    multilingual = False

    def transcribe(
        self, audio: npt.NDArray[np.float32], options: TranscribeOptions, on_progress: ProgressFn
    ) -> ChannelTranscript:
        duration = len(audio) / RATE
        result = ChannelTranscript("en", 1.0, duration, duration)
        if duration >= DURATION_S - 1:
            for seg in SAID[round(float(np.abs(audio).max()) * 10)]:
                words = tuple(Word(at, at + 0.3, " " + text, 0.9) for at, text in seg)
                result.segments.append(Segment(words[0].start, words[-1].end, "".join(w.word for w in words), words,
                                               tokens=(50363, 4153, 2231)))  # fmt: skip
        on_progress(duration)
        return result

    def close(self) -> None:
        pass


def channels() -> list[npt.NDArray[np.float32]]:
    rng = np.random.default_rng(7)
    return [(level * rng.uniform(-1, 1, DURATION_S * RATE)).astype(np.float32) for level in (0.1, 0.2)]


@pytest.fixture
def call(tmp_path: Path) -> Path:
    return write_wav(tmp_path / "call.wav", channels())


async def client_for(aiohttp_client: Any, tmp_path: Path, **config: Any) -> TestClient:
    registry = ModelRegistry("tiny.en", tmp_path / "models", lambda spec: ScriptedTranscriber())
    return await aiohttp_client(create_app(make_config(tmp_path, **config), registry=registry))  # type: ignore[no-any-return]


def no_secrets(text: str) -> None:
    for secret in SECRETS:  # as a word of its own: not inside an id or a float
        assert not re.search(rf"(?<![\w.]){re.escape(secret)}(?!\w)", text), secret


async def submit(client: TestClient, call: Path, **params: str) -> dict[str, Any]:
    answer = await post_audio(client, call, format="json", wait=60, crosstalk="off", **params)
    assert answer.status == 200, await answer.text()
    return dict(await answer.json())


async def test_raw_dialect_every_format(aiohttp_client: Any, tmp_path: Path, call: Path) -> None:
    client = await client_for(aiohttp_client, tmp_path)
    result = await submit(
        client, call, redact="pci", channel_labels="agent,customer", word_timestamps="false"
    )
    assert [(r["type"], r["label"]) for r in result["redactions"]] == [
        ("credit_card", "customer"), ("card_expiry", "customer"), ("card_security_code", "customer")
    ]  # fmt: skip
    assert (result["redactions"][0]["start"], result["redactions"][0]["end"]) == CARD_SPAN
    assert result["text"] == (
        "agent: Card number, please?\ncustomer: It's [CREDIT_CARD].\n"
        "customer: Expiry [CREDIT_CARD_EXPIRY], code [CREDIT_CARD_CVV], paid $45.00."
    )
    assert result["channels"][0]["segments"][0]["words"] == []  # word_timestamps not asked: words still go
    assert result["stats"]["talk_time_s"]["customer"] > 0
    no_secrets(str(result))
    for name in ("json", "xml", "srt", "vtt", "txt", "html"):
        text = await (
            await client.get(f"/v1/transcribe/{result['request_id']}", params={"format": name})
        ).text()
        no_secrets(text)
        assert "CREDIT_CARD" in text, name
    words = await submit(client, call, redact="pci,ssn", redact_sub="mask", word_timestamps="true")
    marker = words["channels"][1]["segments"][0]["words"][1]
    assert (marker["word"], marker["start"], marker["end"]) == (" ****.", *CARD_SPAN)
    no_secrets(
        "\n".join(p.read_bytes().decode("latin-1") for p in (tmp_path / "data").rglob("*") if p.is_file())
    )
    plain = await submit(client, call)
    assert "redactions" not in plain and "4539" in plain["text"]


async def test_openai_forms_and_transcription_jobs(aiohttp_client: Any, tmp_path: Path, call: Path) -> None:
    client = await client_for(aiohttp_client, tmp_path)

    def form(**fields: str) -> aiohttp.FormData:
        data = aiohttp.FormData()
        for name, value in [*fields.items(), ("redact", "pci"), ("redact", "numbers"), ("crosstalk", "off")]:
            data.add_field(name, value)
        data.add_field("file", io.BytesIO(call.read_bytes()), filename="call.wav", content_type="audio/wav")
        return data

    for response_format in ("json", "verbose_json", "text", "srt", "vtt"):
        fields = {"response_format": response_format, "timestamp_granularities": "word,segment"}
        answer = await client.post("/v1/audio/transcriptions", data=form(**fields))
        text = await answer.text()
        assert answer.status == 200, text
        no_secrets(text)
        assert "[CREDIT_CARD]" in text and "[NUMBER]" in text and "45" not in text, response_format
    created = await (
        await client.post("/v1/transcription-jobs", data=form(response_format="verbose_json"))
    ).json()
    for _ in range(200):
        result = await client.get(f"/v1/transcription-jobs/{created['id']}/result")
        if result.status == 200:
            break
        await asyncio.sleep(0.05)
    text = await result.text()
    no_secrets(text)
    assert "[CREDIT_CARD]" in text


async def wait_done(client: TestClient, job_id: str, headers: dict[str, str] | None = None) -> None:
    for _ in range(400):
        answer = await client.head(f"/v1/transcribe/{job_id}", headers=headers or {})  # HEAD: not delivered
        if answer.headers["x-status"] in ("Completed", "Failed"):
            assert answer.headers["x-status"] == "Completed"
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the job never finished")


async def test_audio_job_with_redacted_audio(aiohttp_client: Any, tmp_path: Path, call: Path) -> None:
    client = await client_for(aiohttp_client, tmp_path)
    data = call.read_bytes()
    created = await (await client.post("/v1/audio/uploads", json={
        "file_name": "call.wav", "mime_type": "audio/wav", "size_bytes": len(data)})).json()  # fmt: skip
    url = created["upload_url"].split(str(client.make_url("")).rstrip("/"))[-1]
    assert (await client.put(url, data=data)).status == 200
    assert (await client.post(f"/v1/audio/uploads/{created['id']}/complete")).status == 200
    job = await (await client.post("/v1/audio/jobs", json={
        "upload_id": created["id"], "redact": ["pci"], "redact_audio": True, "crosstalk": "off"})).json()  # fmt: skip
    await wait_done(client, job["id"])
    no_secrets(str(await (await client.get(f"/v1/audio/jobs/{job['id']}")).json()))
    assert not (tmp_path / "data" / "audio" / job["id"]).exists()  # the original goes as before
    wav = await client.get(f"/v1/transcribe/{job['id']}/audio")
    assert wav.status == 200 and wav.content_type == "audio/wav"
    (tmp_path / "copy.wav").write_bytes(await wav.read())
    copy = decode_channels(
        tmp_path / "copy.wav", "audio/wav", [ChannelRef(0, 0), ChannelRef(0, 1)], max_duration_s=60
    )
    original = channels()
    first, last = int((CARD_SPAN[0] - AUDIO_PAD_S) * RATE), int((CARD_SPAN[1] + AUDIO_PAD_S) * RATE)
    assert np.abs(copy[0] - original[0]).max() < 1e-3  # the agent's channel: untouched
    outside = np.r_[0 : first - 1, last + 1 : int(5.9 * RATE)]
    assert np.abs(copy[1][outside] - original[1][outside]).max() < 1e-3  # the rest of the customer's too
    beep = copy[1][first + 10 : last - 10]
    assert np.corrcoef(beep, original[1][first + 10 : last - 10])[0, 1] < 0.05  # the span: no trace of it
    spectrum = np.abs(np.fft.rfft(beep))
    assert abs(np.argmax(spectrum) * RATE / len(beep) - 1000) < 20  # a 1 kHz beep
    for name, content_type in (("flac", "audio/flac"), ("mp3", "audio/mpeg"), ("opus", "audio/ogg")):
        answer = await client.get(f"/v1/transcribe/{job['id']}/audio", params={"format": name})
        assert (
            answer.status == 200 and answer.content_type == content_type and len(await answer.read()) > 1000
        )
    assert (tmp_path / "data" / "audio" / f"{job['id']}.redacted").exists()
    assert (await client.delete(f"/v1/transcribe/{job['id']}")).status == 204
    assert not (tmp_path / "data" / "audio" / f"{job['id']}.redacted").exists()  # deleted with the job
    await expect_error(await client.get(f"/v1/transcribe/{job['id']}/audio"), 404, "request_not_found")


async def test_redaction_errors_ownership_and_retention(
    aiohttp_client: Any, tmp_path: Path, call: Path
) -> None:
    client = await client_for(aiohttp_client, tmp_path)
    for params, param in (({"redact": "pci,cards"}, "redact"), ({"redact_audio": "true"}, "redact_audio"),
                          ({"redact": "pci", "redact_sub": "x"}, "redact_sub")):  # fmt: skip
        await expect_error(await post_audio(client, call, **params), 400, "invalid_request", param)
    data = aiohttp.FormData({"redact": "ssn,phone"})
    data.add_field("file", io.BytesIO(call.read_bytes()), filename="call.wav", content_type="audio/wav")
    await expect_error(
        await client.post("/v1/audio/transcriptions", data=data), 400, "invalid_request", "redact"
    )
    with pytest.raises(InvalidRequest):  # audio jobs: a JSON body (the upload is looked up first)
        parse_redact_json({"redact": 3})
    assert parse_redact_json({"redact": "pci", "redact_audio": True}) == Redaction(("pci",), audio="beep")
    _, mine = await create_key(client.app[STORE], "crm")
    _, theirs = await create_key(client.app[STORE], "other")
    as_me = {"Authorization": f"Bearer {mine}"}
    answer = await post_audio(
        client, call, redact="pci", redact_audio="silence", crosstalk="off", retain="false"
    )
    assert answer.status == 401
    three = write_wav(tmp_path / "three.wav", [*channels(), channels()[0]])
    answer = await client.post("/v1/transcribe", data=io.BytesIO(three.read_bytes()),
                               params={"redact": "pci", "redact_audio": "silence", "crosstalk": "off",
                                       "retain": "false"},
                               headers={"Content-Type": "audio/wav", **as_me})  # fmt: skip
    job_id = (await answer.json())["request_id"]
    await wait_done(client, job_id, as_me)
    audio = f"/v1/transcribe/{job_id}/audio"
    await expect_error(
        await client.get(audio, headers={"Authorization": f"Bearer {theirs}"}), 404, "request_not_found"
    )
    await expect_error(
        await client.get(audio, params={"format": "aac"}, headers=as_me), 400, "invalid_request", "format"
    )
    await expect_error(await client.get(audio, params={"format": "mp3"}, headers=as_me), 400, "invalid_request",
                       "format")  # three channels: mp3 carries two  # fmt: skip
    assert (await client.get(audio, params={"format": "flac"}, headers=as_me)).status == 200
    assert (
        await client.get(f"/v1/transcribe/{job_id}", headers=as_me)
    ).status == 200  # retain=false: delivered
    await expect_error(await client.get(audio, headers=as_me), 404, "request_not_found")
    assert not list((tmp_path / "data" / "audio").glob("*.redacted"))
    plain = (await (await client.post("/v1/transcribe", data=io.BytesIO(call.read_bytes()),
                                      params={"crosstalk": "off"},
                                      headers={"Content-Type": "audio/wav", **as_me})).json())["request_id"]  # fmt: skip
    await wait_done(client, plain, as_me)
    await expect_error(
        await client.get(f"/v1/transcribe/{plain}/audio", headers=as_me), 404, "request_not_found"
    )


async def test_deepgram_dialect_redacts_too(aiohttp_client: Any, tmp_path: Path, call: Path) -> None:
    client = await client_for(aiohttp_client, tmp_path)
    answer = await client.post(
        "/v1/listen?multichannel=true&punctuate=true&redact=pci&redact=ssn&crosstalk=off",
        data=io.BytesIO(call.read_bytes()),
        headers={"Content-Type": "audio/wav"},
    )
    assert answer.status == 200, await answer.text()
    body = await answer.json()
    customer = body["results"]["channels"][1]["alternatives"][0]
    assert "[CREDIT_CARD]" in customer["transcript"] and "[CREDIT_CARD_CVV]" in customer["transcript"]
    no_secrets(str(body))
    legacy = await client.post("/v1/listen?multichannel=true&redact=true&crosstalk=off",
                               data=io.BytesIO(call.read_bytes()), headers={"Content-Type": "audio/wav"})  # fmt: skip
    no_secrets(str(await legacy.json()))  # Deepgram's redact=true: pci
