"""The neighbouring dialects against the real server, with their real clients: the official `openai`
package for every call and response format; curl-style resumable uploads interrupted, resumed across a
restart and transcribed; signed webhooks retried after a 500, verified with `standardwebhooks`."""

import hashlib
import json
import time
from collections.abc import Iterator
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlsplit

import openai
import pytest
from standardwebhooks.webhooks import Webhook

from tests.acceptance.server import Server, http, start_with_key
from tests.conftest import JFK_TEXT, STEREO_TEXTS, corpus
from tests.integration.helpers import wer
from tests.receiver import CallbackReceiver

pytestmark = pytest.mark.model
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    server, key = start_with_key(tmp_path_factory.mktemp("dialects") / "data")
    yield server, key
    server.stop()


@pytest.fixture(scope="module")
def client(keyed_server: tuple[Server, str]) -> openai.OpenAI:
    server, key = keyed_server
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=300)


def cue_text(subtitles: str) -> str:
    """The spoken text of SRT/VTT/plain text: no header, cue numbers or timing lines."""
    lines = [line for line in subtitles.splitlines() if line.strip() and line.strip() != "WEBVTT"]
    return " ".join(line for line in lines if not line.strip().isdigit() and "-->" not in line)


def jfk() -> Path:
    return corpus("jfk.flac")


def test_models(client: openai.OpenAI) -> None:
    ids = [model.id for model in client.models.list()]
    assert ids[0] == "tiny.en" and "base" in ids


@pytest.mark.parametrize("response_format", ["json", "text", "srt", "vtt", "verbose_json"])
def test_transcriptions_in_every_format(client: openai.OpenAI, response_format: str) -> None:
    with open(jfk(), "rb") as audio:
        result = client.audio.transcriptions.create(
            model="whisper-1", file=audio, response_format=response_format, extra_body={"channel_layout": "0"}
        )  # type: ignore[call-overload]
    if response_format in ("json", "verbose_json"):
        assert wer(JFK_TEXT, result.text) <= 0.1, result.text
    else:
        assert isinstance(result, str)
        assert wer(JFK_TEXT, cue_text(result)) <= 0.1, result
    if response_format == "srt":
        assert result.startswith("1\n00:00:00,")
    if response_format == "vtt":
        assert result.startswith("WEBVTT")
    if response_format == "verbose_json":
        assert result.language == "english" and result.duration == pytest.approx(11.0, abs=0.1)
        assert result.segments and result.segments[0].start == 0.0
        assert result.words is None  # words only when asked for


def test_diarized_json_read_by_the_official_client(client: openai.OpenAI, tmp_path: Path) -> None:
    """A mono call of two real voices, as OpenAI's diarizing model answers it (issue 11)."""
    from openai.types.audio import TranscriptionDiarized

    from tests.conftest import write_wav
    from tests.diarize_calls import mixed_call

    call = mixed_call(("jfk", "wizard"), min_turn_s=2.0, length_s=25.0)
    path = write_wav(tmp_path / "mono_call.wav", [call.audio])
    with path.open("rb") as audio:
        result = client.audio.transcriptions.create(
            model="whisper-1", file=audio, response_format="diarized_json"
        )
    assert isinstance(result, TranscriptionDiarized), type(result)
    assert result.task == "transcribe" and result.duration == pytest.approx(call.duration_s, abs=0.1)
    assert {segment.speaker for segment in result.segments} == {"A", "B"} and result.segments[
        0
    ].speaker == "A"
    assert all(segment.type == "transcript.text.segment" for segment in result.segments)
    truth = {name: start for start, _, name in reversed(call.turns)}  # each voice's first turn
    first_b = next(segment for segment in result.segments if segment.speaker == "B")
    assert abs(first_b.start - truth["wizard"]) < 1.0  # B starts where the second voice does
    assert wer(JFK_TEXT, " ".join(s.text for s in result.segments if s.speaker == "A")) <= 0.5


def test_verbose_json_with_words_and_segments(client: openai.OpenAI) -> None:
    with open(jfk(), "rb") as audio:
        result = client.audio.transcriptions.create(
            model="whisper-1", file=audio, response_format="verbose_json",
            timestamp_granularities=["word", "segment"], extra_body={"channel_layout": "0"},
        )  # fmt: skip
    assert result.words is not None and len(result.words) >= 20
    assert result.words[0].word.lower().startswith("and") and result.words[0].start <= result.words[1].start
    assert result.segments is not None and all(seg.end >= seg.start for seg in result.segments)


def test_stereo_channels_with_labels(client: openai.OpenAI) -> None:
    with open(corpus("stereo_diarization.wav"), "rb") as audio:
        result = client.audio.transcriptions.create(
            model="whisper-1", file=audio, extra_body={"channel_labels": "agent,customer"}
        )
    lines = dict(line.split(": ", 1) for line in result.text.splitlines())
    assert wer(STEREO_TEXTS[0], lines["agent"]) <= 0.1 and wer(STEREO_TEXTS[1], lines["customer"]) <= 0.2


# openai 3.x marks audio.translations.create deprecated; the endpoint is part of our contract (API.md §3)
@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
def test_translations_with_the_multilingual_model(client: openai.OpenAI) -> None:
    with open(jfk(), "rb") as audio:
        result = client.audio.translations.create(
            model="base", file=audio, response_format="verbose_json", extra_body={"channel_layout": "0"}
        )
    assert result.language == "english" and wer(JFK_TEXT, result.text) <= 0.2
    with open(jfk(), "rb") as audio:
        plain = client.audio.translations.create(model="base", file=audio, extra_body={"channel_layout": "0"})
    assert wer(JFK_TEXT, plain.text) <= 0.2


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
def test_errors_come_back_as_openai_errors(client: openai.OpenAI, keyed_server: tuple[Server, str]) -> None:
    with open(jfk(), "rb") as audio, pytest.raises(openai.BadRequestError, match="English-only"):
        client.audio.translations.create(model="whisper-1", file=audio)
    with open(jfk(), "rb") as audio, pytest.raises(openai.NotFoundError) as info:
        client.audio.transcriptions.create(model="gpt-9", file=audio)
    assert info.value.body["code"] == "model_not_found"  # type: ignore[index]
    with open(jfk(), "rb") as audio, pytest.raises(openai.UnprocessableEntityError):
        client.audio.transcriptions.create(model="whisper-1", file=("notes.wav", b"not audio at all" * 100))
    server, _ = keyed_server
    stranger = openai.OpenAI(base_url=f"{server.url}/v1", api_key="ssk_wrong", max_retries=0)
    with open(jfk(), "rb") as audio, pytest.raises(openai.AuthenticationError):
        stranger.audio.transcriptions.create(model="whisper-1", file=audio)


def put_piece(url: str, data: bytes, first: int, total: int, *, cut_after: int | None = None) -> int | None:
    """PUT bytes [first, first+len(data)) with Content-Range; with cut_after, drop the connection early."""
    parts = urlsplit(url)
    connection = HTTPConnection(parts.hostname, parts.port, timeout=60)
    connection.putrequest("PUT", f"{parts.path}?{parts.query}")
    connection.putheader("Content-Range", f"bytes {first}-{first + len(data) - 1}/{total}")
    connection.putheader("Content-Length", str(len(data)))
    connection.putheader("Content-Type", "audio/flac")
    connection.endheaders()
    if cut_after is not None:
        connection.send(data[:cut_after])
        connection.sock.close()  # the network fails mid-piece
        return None
    connection.send(data)
    status = connection.getresponse().status
    connection.close()
    return status


def test_upload_in_three_pieces_resumed_after_restart_then_signed_retried_webhook(tmp_path: Path) -> None:
    data = jfk().read_bytes()
    third = len(data) // 3
    pieces = [(0, data[:third]), (third, data[third : 2 * third]), (2 * third, data[2 * third :])]
    args = ("--webhook-secret", SECRET, "--webhook-retry-base-s", "1")
    server = Server(tmp_path / "data", *args).start()
    try:
        created = json.loads(http("POST", f"{server.url}/v1/audio/uploads", json.dumps(
            {"file_name": "jfk.flac", "mime_type": "audio/flac", "size_bytes": len(data)}).encode(),
            {"Content-Type": "application/json"}).body)  # fmt: skip
        url, upload_id = created["upload_url"], created["id"]
        assert put_piece(url, pieces[0][1], pieces[0][0], len(data)) == 200
        put_piece(url, pieces[1][1], pieces[1][0], len(data), cut_after=len(pieces[1][1]) // 2)
        time.sleep(0.5)
        status = json.loads(http("GET", f"{server.url}/v1/audio/uploads/{upload_id}").body)
        assert status["received_bytes"] == third  # the cut piece did not count
        assert server.terminate() == 0
        server = Server(tmp_path / "data", *args, port=server.port).start()
        status = json.loads(http("GET", f"{server.url}/v1/audio/uploads/{upload_id}").body)
        assert status["received_bytes"] == third and status["status"] == "uploading"
        for first, piece in pieces[1:]:  # the retried piece, then the last
            assert put_piece(url, piece, first, len(data)) == 200
        digest = hashlib.sha256(data).hexdigest()
        done = http("POST", f"{server.url}/v1/audio/uploads/{upload_id}/complete", json.dumps({"sha256": digest}).encode(),
                    {"Content-Type": "application/json"})  # fmt: skip
        assert done.status == 200 and json.loads(done.body)["status"] == "completed"
        with CallbackReceiver(statuses=[500, 200]) as receiver:
            job = http("POST", f"{server.url}/v1/audio/jobs", json.dumps(
                {"upload_id": upload_id, "task": "transcribe", "callback_url": receiver.url, "channel_layout": "0",
                 "format": "json"}).encode(), {"Content-Type": "application/json"})  # fmt: skip
            assert job.status == 202
            first, second = receiver.wait_for(2, timeout_s=120)
        job_id = json.loads(job.body)["id"]
        final = json.loads(http("GET", f"{server.url}/v1/audio/jobs/{job_id}").body)
    finally:
        server.stop()
    assert final["status"] == "completed" and wer(JFK_TEXT, final["result"]["text"]) <= 0.1
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    for attempt in (first, second):
        event = Webhook(SECRET).verify(attempt.body, attempt.headers)
        assert event["type"] == "transcription.completed" and event["data"]["id"] == job_id
    assert int(second.headers["webhook-timestamp"]) >= int(first.headers["webhook-timestamp"])
