"""Live streams (issue 21) against the real server and the real model, with the official deepgram-sdk live
client, unchanged but for its base URL: a stereo call at real time and faster, interim and final results per
channel, Finalize, CloseStream -> Metadata, KeepAlive and the idle close, both auth forms, 400s before the
upgrade, garbage mid-stream, streams beside a burst of file jobs, SIGTERM during a stream, save=true.
Short clips; timings are never asserted (bench_live.py measures latency)."""

from __future__ import annotations

import threading
import time
import wave
from collections.abc import Iterator
from typing import Any

import pytest
from deepgram import DeepgramClient
from deepgram.listen.v1.types.listen_v1metadata import ListenV1Metadata
from deepgram.listen.v1.types.listen_v1results import ListenV1Results

from tests.acceptance.server import Server, start_with_key
from tests.acceptance.test_deepgram import sdk
from tests.conftest import STEREO_TEXTS, corpus
from tests.integration.helpers import wer

pytestmark = [
    pytest.mark.model,
    pytest.mark.filterwarnings("ignore:websockets.*is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:websockets"),
]
STEREO = "stereo_diarization.wav"
CHUNK_S = 0.1


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    data = tmp_path_factory.mktemp("live") / "data"
    server, key = start_with_key(data, "--live-idle-timeout-s", "2", "--max-live-streams", "3")
    yield server, key
    server.stop()


@pytest.fixture(scope="module")
def client(keyed_server: tuple[Server, str]) -> Iterator[DeepgramClient]:
    with sdk(*keyed_server) as client:
        yield client


def pcm(name: str = STEREO) -> tuple[bytes, int, int]:
    """The WAV's frames as linear16, its rate and channels."""
    with wave.open(str(corpus(name))) as wav:
        return wav.readframes(wav.getnframes()), wav.getframerate(), wav.getnchannels()


def stream(socket: Any, data: bytes, rate: int, channels: int, speed: float) -> None:
    """The audio in CHUNK_S frames, `speed` times real time (0: as fast as it goes)."""
    step = int(rate * CHUNK_S) * 2 * channels
    for at in range(0, len(data), step):
        socket.send_media(data[at : at + step])
        if speed:
            time.sleep(CHUNK_S / speed)


def collect(socket: Any) -> list[Any]:
    messages: list[Any] = []
    for message in socket:
        messages.append(message)
        if isinstance(message, ListenV1Metadata):
            break
    return messages


def finals(messages: list[Any], channel: int) -> str:
    return " ".join(m.channel.alternatives[0].transcript for m in messages
                    if isinstance(m, ListenV1Results) and m.is_final and m.channel_index[0] == channel).strip()  # fmt: skip


def run_call(client: DeepgramClient, speed: float, **options: Any) -> list[Any]:
    data, rate, channels = pcm()
    with client.listen.v1.connect(model="nova-3", encoding="linear16", sample_rate=rate, channels=channels,
                                  multichannel=True, **options) as socket:  # fmt: skip
        received: list[Any] = []
        reader = threading.Thread(target=lambda: received.extend(collect(socket)))
        reader.start()
        stream(socket, data, rate, channels, speed)
        socket.send_close_stream()
        reader.join(120)
    return received


@pytest.mark.parametrize("speed", [1.0, 0.0], ids=["real_time", "all_at_once"])
def test_stereo_call_finals_per_channel(client: DeepgramClient, speed: float) -> None:
    messages = run_call(
        client, speed, interim_results=True, vad_events=True, utterance_end_ms=1000, punctuate=True
    )
    assert isinstance(messages[-1], ListenV1Metadata)
    assert messages[-1].duration == pytest.approx(5.0, abs=0.1) and messages[-1].channels == 2
    assert wer(STEREO_TEXTS[0], finals(messages, 0)) <= 0.15
    assert wer(STEREO_TEXTS[1], finals(messages, 1)) <= 0.2
    results = [m for m in messages if isinstance(m, ListenV1Results)]
    assert {tuple(m.channel_index) for m in results} == {(0, 2), (1, 2)}
    assert all(m.metadata.request_id == messages[-1].request_id for m in results)
    for m in results:
        words = m.channel.alternatives[0].words
        assert all(m.start - 0.01 <= w.start <= w.end <= m.start + m.duration + 0.01 for w in words)
    kinds = {type(m).__name__ for m in messages}
    assert "ListenV1SpeechStarted" in kinds
    if speed:  # the wizard line is 5 s: an interim comes about once a second while it is spoken
        assert any(not m.is_final for m in results)
