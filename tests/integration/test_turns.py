"""The conversation as it happened (issue 27), with the real tiny.en model through the real app, on calls
whose turns are known (tests/dialogue_calls.py): turns in order and no overlap that is not there, in the
JSON timeline and stats, the text formats and the OpenAI dialect, with and without word timestamps; real
overlap counted."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from speechsvc.app import create_app
from speechsvc.asr.models import ModelRegistry
from tests.conftest import make_config, write_wav
from tests.dialogue_calls import BARGE_IN, TURN_TAKING, Call, call, order_errors, true_overlap_s
from tests.integration.helpers import normalise, transcribe_json, wer

pytestmark = pytest.mark.model
ClientFactory = Callable[..., Awaitable[TestClient]]
# what tells the lines apart in text: the customer's turn is cut by a pause in which the agent speaks
IN_ORDER = ("help you today", "refund please", "order number", "confirmation email", "take your time",
            "here it is", "both payments", "cancel", "refunded", "great", "anything else", "goodbye")  # fmt: skip


@pytest.fixture(scope="module")
def calls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Call]]:
    folder = tmp_path_factory.mktemp("calls")
    made = {"turns": call(TURN_TAKING), "barge": call(BARGE_IN)}
    return {
        name: (write_wav(folder / f"{name}.wav", list(found.channels)), found) for name, found in made.items()
    }


@pytest.fixture
async def client(aiohttp_client: ClientFactory, tmp_path: Path, tiny_registry: ModelRegistry) -> TestClient:
    return await aiohttp_client(create_app(make_config(tmp_path), registry=tiny_registry))


def assert_in_order(text: str) -> None:
    """The lines' key phrases appear in the order they were said (words only: a CPU whose int8 kernels
    punctuate differently still reads "refund, please" as the phrase)."""
    lowered = " ".join(normalise(text).split())
    where = [lowered.find(phrase) for phrase in IN_ORDER]
    assert all(at >= 0 for at in where), [p for p, at in zip(IN_ORDER, where, strict=True) if at < 0]
    assert where == sorted(where), text


async def test_turns_are_in_order_with_no_overlap_that_is_not_there(
    client: TestClient, calls: dict[str, tuple[Path, Call]]
) -> None:
    path, found = calls["turns"]
    result = await transcribe_json(client, path, channel_labels="agent,customer")
    entries = [(e["start"], e["end"], e["label"]) for e in result["timeline"]]
    assert order_errors(entries, found.truth) == 0, entries
    assert true_overlap_s(found.truth) == 0 and result["stats"]["overlap_s"] <= 0.2, result["stats"]
    for who in ("agent", "customer"):
        said = sum(s.end - s.start for s in found.truth if s.who == who)
        assert result["stats"]["talk_time_s"][who] == pytest.approx(said, rel=0.15), result["stats"]
        channel = next(c for c in result["channels"] if c["label"] == who)
        assert wer(found.texts(who), " ".join(s["text"] for s in channel["segments"])) <= 0.25
        assert channel["gaps"] == [] and channel["transcribed_s"] == channel["speech_s"]
    # each entry starts where its first line's speech starts (the silence before it is not the segment's)
    for start, _, who in entries:
        nearest = min((s for s in found.truth if s.who == who), key=lambda s: abs(s.start - start))
        assert start == pytest.approx(nearest.start, abs=0.5) or nearest.start < start < nearest.end
    assert_in_order(result["text"])
    # every text format of the same job reads in the same order
    for name in ("txt", "srt", "vtt", "html", "xml"):
        response = await client.get(f"/v1/transcribe/{result['request_id']}", params={"format": name})
        assert response.status == 200
        text = await response.text()
        if name == "xml":  # the words, in the document's order
            text = " ".join(orth.text or "" for orth in ET.fromstring(text.encode()).iter("orth"))
        assert_in_order(text)
    # without word timestamps: no words in the answer, the same timeline and stats
    without = await transcribe_json(client, path, channel_labels="agent,customer", word_timestamps="false")
    assert all(seg["words"] == [] for c in without["channels"] for seg in c["segments"])  # as asked
    assert without["timeline"] == result["timeline"] and without["stats"] == result["stats"]


async def test_the_openai_default_output_reads_in_order(
    client: TestClient, calls: dict[str, tuple[Path, Call]]
) -> None:
    path, _ = calls["turns"]
    form = FormData()
    form.add_field("file", io.BytesIO(path.read_bytes()), filename="call.wav", content_type="audio/wav")
    form.add_field("model", "whisper-1")
    response = await client.post("/v1/audio/transcriptions", data=form)
    assert response.status == 200, await response.text()
    assert_in_order((await response.json())["text"])
    form = FormData()
    form.add_field("file", io.BytesIO(path.read_bytes()), filename="call.wav", content_type="audio/wav")
    form.add_field("model", "whisper-1")
    form.add_field("response_format", "verbose_json")
    body = await (await client.post("/v1/audio/transcriptions", data=form)).json()
    starts = [segment["start"] for segment in body["segments"]]
    assert starts == sorted(starts)
    assert_in_order(" ".join(segment["text"] for segment in body["segments"]))


async def test_real_overlap_is_counted(client: TestClient, calls: dict[str, tuple[Path, Call]]) -> None:
    path, found = calls["barge"]
    result = await transcribe_json(client, path, channel_labels="agent,customer")
    # the customer starts 1.2 s before the agent's question ends (0.4 s of it a pause after "Hi Sarah,")
    assert 0.4 <= result["stats"]["overlap_s"] <= true_overlap_s(found.truth) + 0.2, result["stats"]
    first_customer = next(e for e in result["timeline"] if e["label"] == "customer")
    assert first_customer["start"] == pytest.approx(found.truth[1].start, abs=0.3)
