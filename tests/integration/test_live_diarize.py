"""diarize=true on a mono live stream (issue 21): a mono call of two real voices (JFK and the wizard line of
the stereo corpus file, turns in rotation) streamed as linear16; each final's words carry the speaker of
their utterance, one per voice. The real app and the real speaker model; the fake transcriber (its words
are placeholders: the speakers come from the audio)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import aiohttp
import numpy as np

from tests.diarize_calls import mixed_call

RECEIVE_TIMEOUT_S = 60.0


async def test_each_voice_gets_its_own_speaker(make_client: Any) -> None:
    call = mixed_call(("jfk", "wizard"), length_s=30)
    client = await make_client()
    query = {"encoding": "linear16", "sample_rate": "16000", "diarize": "true", "endpointing": "300"}
    socket = await client.ws_connect("/v1/listen", params=query)
    pcm = (np.clip(call.audio, -1, 1) * 32767).astype("<i2").tobytes()
    for at in range(0, len(pcm), 32000):
        await socket.send_bytes(pcm[at : at + 32000])
    await socket.send_str(json.dumps({"type": "CloseStream"}))
    finals = []
    while (message := await socket.receive(timeout=RECEIVE_TIMEOUT_S)).type == aiohttp.WSMsgType.TEXT:
        data = json.loads(message.data)
        if data["type"] == "Results" and data["is_final"] and data["channel"]["alternatives"][0]["words"]:
            finals.append(data)
    votes: dict[str, Counter[int]] = {"jfk": Counter(), "wizard": Counter()}
    for final in finals:
        words = final["channel"]["alternatives"][0]["words"]
        assert all(isinstance(word["speaker"], int) for word in words)
        middle = final["start"] + final["duration"] / 2
        voice = next(name for start, end, name in call.turns if start - 0.5 <= middle <= end + 0.5)
        votes[voice].update(word["speaker"] for word in words)
    jfk, wizard = votes["jfk"].most_common(1)[0], votes["wizard"].most_common(1)[0]
    assert jfk[0] != wizard[0]
    right = jfk[1] + wizard[1]
    assert right >= 0.9 * (sum(votes["jfk"].values()) + sum(votes["wizard"].values()))


async def test_diarize_on_several_channels_is_a_400(make_client: Any) -> None:
    client = await make_client()
    query = {"encoding": "linear16", "sample_rate": "16000", "channels": "2", "diarize": "true"}
    answer = await client.get("/v1/listen", params=query)
    body = await answer.json()
    assert answer.status == 400 and body["error"]["param"] == "diarize"
