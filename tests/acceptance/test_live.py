"""Live streams (issue 21) against the real server and the real model, with the official deepgram-sdk live
client, unchanged but for its base URL: a stereo call at real time and faster, interim and final results per
channel, Finalize, CloseStream -> Metadata, KeepAlive and the idle close, both auth forms, 400s before the
upgrade, garbage mid-stream, streams beside a burst of file jobs, SIGTERM during a stream, save=true.
Short clips; timings are never asserted (bench_live.py measures latency)."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import websockets.exceptions
import websockets.sync.client
from deepgram import DeepgramClient
from deepgram.listen.v1.types.listen_v1metadata import ListenV1Metadata
from deepgram.listen.v1.types.listen_v1results import ListenV1Results

from tests.acceptance.server import Server, http, start_with_key
from tests.acceptance.test_deepgram import sdk
from tests.conftest import FIXTURES, STEREO_TEXTS, corpus
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


def ws_url(server: Server, query: str) -> str:
    return server.url.replace("http", "ws") + "/v1/listen?" + query


def raw_messages(socket: Any) -> list[dict[str, Any]]:
    """Every message until the server closes."""
    out = []
    with contextlib.suppress(websockets.exceptions.ConnectionClosed):
        for text in socket:
            out.append(json.loads(text))
    return out


def test_finalize_keepalive_and_idle_close(keyed_server: tuple[Server, str]) -> None:
    server, key = keyed_server
    data, rate, channels = pcm()
    url = ws_url(server, f"encoding=linear16&sample_rate={rate}&channels={channels}&multichannel=true")
    with websockets.sync.client.connect(url, additional_headers={"Authorization": f"Token {key}"}) as socket:
        socket.send(data[: len(data) // 2])  # 2.5 s, both parties mid-sentence
        socket.send(json.dumps({"type": "Finalize"}))
        for _ in range(3):  # 3 s of KeepAlive: longer than the 2 s idle timeout
            time.sleep(1.0)
            socket.send(json.dumps({"type": "KeepAlive"}))
        messages = raw_messages(socket)  # then silence: the server closes
        assert socket.close_code == 1011 and socket.close_reason == "idle_timeout"
    flushed = [m for m in messages if m["type"] == "Results" and m["from_finalize"]]
    assert {m["channel_index"][0] for m in flushed} == {0, 1} and all(m["is_final"] for m in flushed)
    assert "he began" in " ".join(m["channel"]["alternatives"][0]["transcript"] for m in flushed)
    assert messages[-1]["type"] == "Error" and messages[-1]["variant"] == "idle_timeout"


def test_browser_auth_by_subprotocol_and_wrong_key(
    keyed_server: tuple[Server, str], client: DeepgramClient
) -> None:
    server, key = keyed_server
    url = ws_url(server, "encoding=mulaw&sample_rate=8000")
    with websockets.sync.client.connect(url, subprotocols=["token", key]) as socket:  # type: ignore[list-item]
        assert socket.subprotocol == "token"
        socket.send(bytes([0xFF]) * 8000)  # a second of mu-law silence
        socket.send(json.dumps({"type": "CloseStream"}))
        messages = raw_messages(socket)
    assert messages[-1]["type"] == "Metadata" and messages[-1]["duration"] == pytest.approx(1.0, abs=0.05)
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        websockets.sync.client.connect(url, additional_headers={"Authorization": "Token ssk_wrong"})
    assert refused.value.response.status_code == 401


@pytest.mark.parametrize(
    ("query", "param"),
    [("encoding=opus&sample_rate=48000", "encoding"), ("encoding=linear16", "sample_rate"),
     ("endpointing=soon", "endpointing"), ("diarize=true&channels=2&encoding=mulaw&sample_rate=8000", "diarize"),
     ("interim=true", "interim"), ("channels=99&encoding=linear16&sample_rate=8000", "channels"),
     ("summarize=v2", "summarize"), ("redact=card", "redact"), ("redact=pci&redact_audio=true", "redact_audio")],
)  # fmt: skip
def test_bad_query_is_400_before_the_upgrade(
    keyed_server: tuple[Server, str], query: str, param: str
) -> None:
    server, key = keyed_server
    answer = http("GET", f"{server.url}/v1/listen?{query}", headers={
        "Authorization": f"Token {key}", "Connection": "Upgrade", "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})  # fmt: skip
    assert answer.status == 400, answer.body
    assert json.loads(answer.body)["error"]["param"] == param


def test_garbage_mid_stream_closes_that_stream_only(
    keyed_server: tuple[Server, str], client: DeepgramClient
) -> None:
    server, key = keyed_server
    ogg = (FIXTURES / "dialogue" / "a1.ogg").read_bytes()
    with websockets.sync.client.connect(
        ws_url(server, ""), additional_headers={"Authorization": f"Token {key}"}
    ) as socket:
        for at in range(0, len(ogg), 4000):
            socket.send(ogg[at : at + 4000])
        socket.send(json.dumps({"type": "Finalize"}))
        messages = []
        while not any(m["type"] == "Results" and m["from_finalize"] for m in messages):  # its final first
            with contextlib.suppress(TimeoutError):
                messages.append(json.loads(socket.recv(timeout=1.0)))
            socket.send(json.dumps({"type": "KeepAlive"}))  # the idle timeout is 2 s
        with contextlib.suppress(websockets.exceptions.ConnectionClosed):  # closed as soon as it is seen
            for _ in range(8):
                socket.send(np.random.default_rng(7).bytes(40_000))
        messages += raw_messages(socket)
        assert socket.close_code == 1008 and socket.close_reason == "undecodable_audio"
    assert messages[-1]["type"] == "Error" and messages[-1]["variant"] == "undecodable_audio"
    assert any(
        m["type"] == "Results" and "sarah" in m["channel"]["alternatives"][0]["transcript"].lower()
        for m in messages
    )  # fmt: skip  (the Opus before the garbage was decoded)
    assert wer(STEREO_TEXTS[1], finals(run_call(client, 0.0), 1)) <= 0.2  # the server goes on


def test_streams_beside_a_burst_of_file_jobs(
    keyed_server: tuple[Server, str], client: DeepgramClient
) -> None:
    server, key = keyed_server
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "audio/wav"}
    body = corpus(STEREO).read_bytes()
    jobs = [
        json.loads(http("POST", f"{server.url}/v1/transcribe", body, headers).body)["request_id"]
        for _ in range(4)
    ]
    calls: list[list[Any]] = [[], []]
    threads = [threading.Thread(target=lambda out=out: out.extend(run_call(client, 2.0))) for out in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    for messages in calls:
        assert wer(STEREO_TEXTS[0], finals(messages, 0)) <= 0.15
        assert wer(STEREO_TEXTS[1], finals(messages, 1)) <= 0.2
    for job in jobs:
        answer = http("GET", f"{server.url}/v1/transcribe/{job}", headers={"Authorization": f"Bearer {key}"})
        deadline = time.monotonic() + 120
        while answer.headers.get("x-status") not in ("Ready", "Completed") and time.monotonic() < deadline:
            time.sleep(0.2)
            answer = http(
                "GET", f"{server.url}/v1/transcribe/{job}", headers={"Authorization": f"Bearer {key}"}
            )
        assert answer.headers.get("x-status") in ("Ready", "Completed")


def test_save_true_keeps_the_call_as_a_job(keyed_server: tuple[Server, str], client: DeepgramClient) -> None:
    server, key = keyed_server
    messages = run_call(client, 0.0, request_options={"additional_query_parameters": {"save": "true"}})
    request_id = messages[-1].request_id
    auth = {"Authorization": f"Bearer {key}"}
    answer = server.wait_status(request_id, {"Completed", "Failed"}, headers=auth, format="json")
    assert answer.headers.get("x-status") == "Completed", answer.body
    result = json.loads(answer.body)
    assert len(result["channels"]) == 2 and result["duration_s"] == pytest.approx(5.0, abs=0.1)
    assert wer(STEREO_TEXTS[1], " ".join(s["text"] for s in result["channels"][1]["segments"])) <= 0.2


def test_full_server_and_api_only_node_refuse(keyed_server: tuple[Server, str], tmp_path: Path) -> None:
    server, key = keyed_server
    auth = {"Authorization": f"Token {key}"}
    url = ws_url(server, "encoding=linear16&sample_rate=16000")
    with contextlib.ExitStack() as sockets:
        for _ in range(3):
            sockets.enter_context(websockets.sync.client.connect(url, additional_headers=auth))
        with pytest.raises(websockets.exceptions.InvalidStatus) as full:
            websockets.sync.client.connect(url, additional_headers=auth)
        assert full.value.response.status_code == 503
        assert b"retry later" in full.value.response.body
    api_only = Server(tmp_path / "api", "--no-worker").start()
    try:
        answer = http("GET", f"{api_only.url}/v1/listen")
        assert answer.status == 503 and json.loads(answer.body)["error"]["code"] == "live_not_served"
    finally:
        api_only.stop()


def test_sigterm_sends_the_last_finals_and_1001(tmp_path: Path) -> None:
    server = Server(tmp_path / "data").start()
    data, rate, channels = pcm()
    url = ws_url(server, f"encoding=linear16&sample_rate={rate}&channels={channels}&multichannel=true")
    with websockets.sync.client.connect(url) as socket:
        socket.send(data[: len(data) * 3 // 5])  # 3 s: the wizard line is still going
        time.sleep(1.0)
        server.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        messages = raw_messages(socket)
        assert socket.close_code == 1001
    assert server.process is not None and server.process.wait(60) == 0
    finals_0 = [
        m for m in messages if m["type"] == "Results" and m["is_final"] and m["channel_index"][0] == 0
    ]
    assert finals_0 and "he began" in finals_0[-1]["channel"]["alternatives"][0]["transcript"]
