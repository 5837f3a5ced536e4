"""Redaction on a live stream (issue 22, item 6), with the real server, the real model and the official
deepgram-sdk live client: the customer reads a card over two turns (the agent's "go on" between, on the
other channel); no Results message, interim or final, carries a group of it, the finals of the customer's
channel carry the marker, and with save=true the saved call is redacted too."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from deepgram.listen.v1.types.listen_v1results import ListenV1Results

from tests.acceptance.server import start_with_key
from tests.acceptance.test_deepgram import sdk
from tests.acceptance.test_live import collect, stream
from tests.acceptance.test_redact import leaks
from tests.redact_calls import CARD, RATE, build

pytestmark = [
    pytest.mark.model,
    pytest.mark.filterwarnings("ignore:websockets.*is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:websockets"),
]


def test_card_over_two_finals_redacted_live_and_in_the_saved_call(tmp_path: Path) -> None:
    channels, _ = build("two_turns")
    frames = np.clip(np.stack(channels, axis=1) * 32767, -32768, 32767).astype("<i2").tobytes()
    server, key = start_with_key(tmp_path / "data")
    try:
        with sdk(server, key) as client, client.listen.v1.connect(
            model="nova-3", encoding="linear16", sample_rate=RATE, channels=2, multichannel=True,
            interim_results=True, punctuate=True,
            request_options={"additional_query_parameters": {"redact": "pci", "save": "true"}},
        ) as socket:  # fmt: skip
            received: list[Any] = []
            reader = threading.Thread(target=lambda: received.extend(collect(socket)))
            reader.start()
            stream(
                socket, frames, RATE, 2, 0.0
            )  # as fast as it goes: the stream clock runs ahead of the finals
            socket.send_close_stream()
            reader.join(120)
        results = [m for m in received if isinstance(m, ListenV1Results)]
        shown = [m.channel.alternatives[0] for m in results]
        # no group of the card in any message, in any spacing ("453 9 1 4 8 8", as the model may write it)
        for alternative in shown:
            digits = re.sub(r"\D", "", alternative.transcript + " ".join(w.word for w in alternative.words))
            assert leaks(alternative.transcript) == [] and not any(
                CARD[i : i + 6] in digits for i in range(11)
            )
        customer = " ".join(m.channel.alternatives[0].transcript for m in results
                            if m.is_final and m.channel_index[0] == 1)  # fmt: skip
        agent = " ".join(m.channel.alternatives[0].transcript for m in results
                         if m.is_final and m.channel_index[0] == 0)  # fmt: skip
        assert "[CREDIT_CARD]" in customer and "card" in agent.lower()
        request_id = received[-1].request_id
        auth = {"Authorization": f"Bearer {key}"}
        answer = server.wait_status(request_id, {"Completed", "Failed"}, headers=auth, format="json")
        assert answer.headers.get("x-status") == "Completed", answer.body
        saved = json.loads(answer.body)
        assert "credit_card" in [r["type"] for r in saved["redactions"]] and leaks(json.dumps(saved)) == []
        assert leaks(server.log.read_text(errors="replace")) == []
    finally:
        server.stop()
