"""The Deepgram dialect (issue 20) against the real server and the real model, with the official
`deepgram-sdk`, unchanged but for its base URL: transcribe_file (multichannel, a dual-mono file merged,
diarize, utterances, keyterm, search), a callback received once and verified, transcribe_url from a
loopback file server, a wrong key, an undecodable body. One server for the module; short recordings."""

import contextlib
import functools
import json
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from deepgram import DeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.environment import DeepgramClientEnvironment
from deepgram.types.listen_v1accepted_response import ListenV1AcceptedResponse
from deepgram.types.listen_v1response import ListenV1Response
from standardwebhooks.webhooks import Webhook

from tests.acceptance.server import Server, start_with_key
from tests.conftest import CORPUS, JFK_TEXT, STEREO_TEXTS, corpus, write_wav
from tests.integration.helpers import wer
from tests.receiver import CallbackReceiver

# deepgram-sdk 7 imports names that websockets 14+ deprecates (its live client; the REST calls here never use it)
pytestmark = [
    pytest.mark.model,
    pytest.mark.filterwarnings("ignore:websockets.*is deprecated:DeprecationWarning"),
]
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    data = tmp_path_factory.mktemp("deepgram") / "data"
    server, key = start_with_key(data, "--fetch-allow-private", "--webhook-secret", SECRET)
    yield server, key
    server.stop()


@contextlib.contextmanager
def sdk(server: Server, key: str) -> Iterator[DeepgramClient]:
    """The official client, pointed at speechsvc: only the environment's base URL changes (its HTTP client
    is ours only to be closed at the end)."""
    ws = server.url.replace("http", "ws")
    environment = DeepgramClientEnvironment(base=server.url, production=ws, agent=ws, agent_rest=server.url)
    with httpx.Client(timeout=300) as http_client:
        yield DeepgramClient(api_key=key, environment=environment, httpx_client=http_client, max_retries=0)


@pytest.fixture(scope="module")
def client(keyed_server: tuple[Server, str]) -> Iterator[DeepgramClient]:
    with sdk(*keyed_server) as client:
        yield client


def transcript(response: Any, channel: int = 0) -> str:
    return str(response.results.channels[channel].alternatives[0].transcript)


def test_multichannel_call_each_channel_its_own_transcript(client: DeepgramClient) -> None:
    response = client.listen.v1.media.transcribe_file(
        request=corpus("stereo_diarization.wav").read_bytes(), model="nova-3", multichannel=True,
        smart_format=True, utterances=True,
    )  # fmt: skip
    assert isinstance(response, ListenV1Response), type(response)
    assert response.metadata.channels == 2 and len(response.results.channels) == 2
    assert wer(STEREO_TEXTS[0], transcript(response, 0)) <= 0.1
    assert wer(STEREO_TEXTS[1], transcript(response, 1)) <= 0.2
    assert transcript(response, 0)[0].isupper()  # smart_format: punctuated and capitalised
    assert response.results.utterances and {u.channel for u in response.results.utterances} == {0, 1}
    assert response.metadata.duration == pytest.approx(5.0, abs=0.1)


def test_dual_mono_merged_with_keyterm_search_and_utterances(client: DeepgramClient) -> None:
    """jfk.flac holds one speech on both channels: without multichannel it is one transcript, each word
    once; the search finds the phrase where it is said."""
    response = client.listen.v1.media.transcribe_file(
        request=corpus("jfk.flac").read_bytes(), keyterm=["Americans"], search=["fellow americans"],
        utterances=True, punctuate=True, tag=["qa"], extra=["ticket:42"],
    )  # fmt: skip
    assert isinstance(response, ListenV1Response)
    assert len(response.results.channels) == 1 and wer(JFK_TEXT, transcript(response)) <= 0.1
    words = response.results.channels[0].alternatives[0].words
    assert words and all(w.start <= w.end for w in words) and words[0].punctuated_word
    search = response.results.channels[0].search
    assert search and search[0].query == "fellow americans"
    best = search[0].hits[0]
    assert best.confidence >= 0.9 and "fellow" in best.snippet and 0.5 <= best.start <= 4.0
    assert response.results.utterances and response.results.utterances[0].transcript
    assert response.metadata.tags == ["qa"] and response.metadata.extra == {"ticket": "42"}  # type: ignore[attr-defined]


def test_diarize_a_mono_call(client: DeepgramClient, tmp_path: Path) -> None:
    from tests.diarize_calls import mixed_call

    call = mixed_call(("jfk", "wizard"), min_turn_s=2.0, length_s=20.0)
    audio = write_wav(tmp_path / "mono_call.wav", [call.audio]).read_bytes()
    response = client.listen.v1.media.transcribe_file(
        request=audio, diarize=True, utterances=True, paragraphs=True
    )
    assert isinstance(response, ListenV1Response)
    words = response.results.channels[0].alternatives[0].words
    assert words and all(isinstance(w.speaker, int) for w in words)
    assert {w.speaker for w in words} == {0, 1}
    assert all(isinstance(u.speaker, int) for u in response.results.utterances or [])
    paragraphs = response.results.channels[0].alternatives[0].paragraphs
    assert paragraphs is not None and "Speaker 1:" in (paragraphs.transcript or "")


def test_callback_delivers_the_answer_once_signed(client: DeepgramClient) -> None:
    with CallbackReceiver() as receiver:
        accepted = client.listen.v1.media.transcribe_file(
            request=corpus("stereo_diarization.wav").read_bytes(), callback=receiver.url, multichannel=True
        )
        assert isinstance(accepted, ListenV1AcceptedResponse), type(accepted)
        (delivered,) = receiver.wait_for(1, timeout_s=120)
        time.sleep(1.5)  # no second delivery comes
        assert len(receiver.requests) == 1
    Webhook(SECRET).verify(delivered.body, delivered.headers)
    answer = ListenV1Response.model_validate(json.loads(delivered.body))
    assert answer.metadata.request_id == accepted.request_id
    assert wer(STEREO_TEXTS[1], transcript(answer, 1)) <= 0.2


@pytest.fixture
def file_server() -> Iterator[str]:
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(CORPUS))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_transcribe_url_from_a_loopback_file_server(client: DeepgramClient, file_server: str) -> None:
    response = client.listen.v1.media.transcribe_url(
        url=f"{file_server}/stereo_diarization.wav", multichannel=True
    )
    assert isinstance(response, ListenV1Response)
    assert wer(STEREO_TEXTS[0], transcript(response, 0)) <= 0.1
    with pytest.raises(ApiError) as refused:  # metadata addresses stay refused even so
        client.listen.v1.media.transcribe_url(url="http://169.254.169.254/latest/meta-data")
    assert refused.value.status_code == 400 and refused.value.body["err_code"] == "Bad Request"


def test_wrong_key_and_undecodable_body(keyed_server: tuple[Server, str], client: DeepgramClient) -> None:
    server, _ = keyed_server
    with sdk(server, "ssk_wrong") as stranger, pytest.raises(ApiError) as wrong:
        stranger.listen.v1.media.transcribe_file(request=b"RIFF")
    assert wrong.value.status_code == 401 and wrong.value.body["err_code"] == "INVALID_AUTH"
    with pytest.raises(ApiError) as undecodable:
        client.listen.v1.media.transcribe_file(request=b"not audio at all" * 100)
    assert undecodable.value.status_code == 422 and undecodable.value.body["err_msg"]
    with pytest.raises(ApiError) as unsupported:
        client.listen.v1.media.transcribe_file(request=b"RIFF", sentiment=True)
    assert unsupported.value.status_code == 400 and "language model" in unsupported.value.body["err_msg"]
