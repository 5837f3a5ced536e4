"""The live stream's bound on memory (issue 21, item 3) on the real app with the fake transcriber, slow on
purpose: a client sending a call far faster than real time, beyond --live-buffer-s of speech waiting to be
decoded, is closed with an Error and a reason; the server goes on and takes the next stream."""

from __future__ import annotations

import contextlib
import json
import wave
from typing import Any

import aiohttp

from tests.conftest import corpus

QUERY = {"encoding": "linear16", "sample_rate": "16000", "channels": "2", "multichannel": "true"}
CHUNK_BYTES = 16000 * 2 * 2  # a second of the stereo call
RECEIVE_TIMEOUT_S = 30.0


def stereo_call() -> bytes:
    with wave.open(str(corpus("stereo_diarization.wav"))) as wav:
        assert (wav.getframerate(), wav.getnchannels()) == (16000, 2)
        return wav.readframes(wav.getnframes())


async def received(socket: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    """Every JSON message until the server closes."""
    messages = []
    while (message := await socket.receive(timeout=RECEIVE_TIMEOUT_S)).type == aiohttp.WSMsgType.TEXT:
        messages.append(json.loads(message.data))
    return messages


async def test_a_client_far_faster_than_real_time_is_closed_and_the_server_goes_on(make_client: Any) -> None:
    client = await make_client(delay_s=0.5, live_buffer_s=3.0)  # decoding at half real time
    call = stereo_call() * 8  # 40 s, sent at once
    socket = await client.ws_connect("/v1/listen", params=QUERY)
    with contextlib.suppress(ConnectionError):  # the server may close while we still send
        for at in range(0, len(call), CHUNK_BYTES):
            await socket.send_bytes(call[at : at + CHUNK_BYTES])
    messages = await received(socket)
    assert socket.close_code == 1008
    assert messages[-1]["type"] == "Error" and messages[-1]["variant"] == "live_buffer_full"
    assert "3 s" in messages[-1]["description"]
    # the next stream is served as if nothing happened
    socket = await client.ws_connect("/v1/listen", params=QUERY)
    await socket.send_bytes(stereo_call())
    await socket.send_str(json.dumps({"type": "CloseStream"}))
    messages = await received(socket)
    assert socket.close_code == 1000 and messages[-1]["type"] == "Metadata"
    assert messages[-1]["duration"] == 5.0 and messages[-1]["channels"] == 2
    assert any(m["type"] == "Results" and m["channel"]["alternatives"][0]["transcript"] for m in messages)
    assert (await client.get("/healthz")).status == 200
