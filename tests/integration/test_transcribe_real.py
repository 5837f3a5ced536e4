"""The real tiny.en model through the real app on real recordings (../shared/corpus and fixtures/)."""

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from speechsvc.app import create_app
from speechsvc.asr.models import ModelRegistry
from tests.conftest import FIXTURES, JFK_TEXT, STEREO_TEXTS, corpus, make_config
from tests.integration.helpers import transcribe_json, wer

pytestmark = pytest.mark.model
ClientFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def client(aiohttp_client: ClientFactory, tmp_path: Path, tiny_registry: ModelRegistry) -> TestClient:
    return await aiohttp_client(create_app(make_config(tmp_path), registry=tiny_registry))


async def test_jfk_matches_known_text(client: TestClient) -> None:
    result = await transcribe_json(client, corpus("jfk.flac"), channel_layout="0")
    assert len(result["channels"]) == 1
    channel = result["channels"][0]
    assert wer(JFK_TEXT, result["text"]) <= 0.1, result["text"]
    assert channel["language"] == "en" and channel["duration_s"] == pytest.approx(11.0, abs=0.05)
    words = [w for seg in channel["segments"] for w in seg["words"]]
    assert len(words) >= 20
    assert all(0 <= w["confidence"] <= 1 and w["start"] <= w["end"] for w in words)
    assert words[0]["word"].strip().lower() == "and"


async def test_stereo_without_layout_gives_both_channels(client: TestClient) -> None:
    result = await transcribe_json(client, corpus("stereo_diarization.wav"), channel_labels="agent,customer")
    texts = {c["label"]: " ".join(s["text"] for s in c["segments"]) for c in result["channels"]}
    assert wer(STEREO_TEXTS[0], texts["agent"]) <= 0.1, texts
    assert wer(STEREO_TEXTS[1], texts["customer"]) <= 0.2, texts
    assert [(c["stream"], c["channel"]) for c in result["channels"]] == [(0, 0), (0, 1)]
    assert {e["label"] for e in result["timeline"]} == {"agent", "customer"}
    assert [e["start"] for e in result["timeline"]] == sorted(e["start"] for e in result["timeline"])
    assert set(result["stats"]["talk_time_s"]) == {"agent", "customer"}
    assert result["stats"]["overlap_s"] > 0  # both speak from 0 s


async def test_layout_1_selects_only_the_second_channel(client: TestClient) -> None:
    result = await transcribe_json(client, corpus("stereo_diarization.wav"), channel_layout="1")
    assert [(c["channel"], c["label"]) for c in result["channels"]] == [(1, "0.1")]
    assert wer(STEREO_TEXTS[1], result["text"]) <= 0.2, result["text"]


@pytest.mark.parametrize("name", ["two_streams.mp4", "two_streams.mkv"])
async def test_second_stream_addressed_as_1_0(client: TestClient, name: str) -> None:
    result = await transcribe_json(client, FIXTURES / name, channel_layout="1.0,0.0")
    assert [(c["stream"], c["channel"]) for c in result["channels"]] == [(1, 0), (0, 0)]
    by_label = {c["label"]: " ".join(s["text"] for s in c["segments"]) for c in result["channels"]}
    assert wer(STEREO_TEXTS[0], by_label["1.0"]) <= 0.1, by_label
    assert wer(JFK_TEXT, by_label["0.0"]) <= 0.15, by_label


async def test_8khz_mulaw_stereo_wav(client: TestClient) -> None:
    result = await transcribe_json(client, FIXTURES / "stereo_mulaw_8k.wav")
    texts = [" ".join(s["text"] for s in c["segments"]) for c in result["channels"]]
    assert wer(STEREO_TEXTS[0], texts[0]) <= 0.15, texts
    assert wer(STEREO_TEXTS[1], texts[1]) <= 0.2, texts


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("jfk.mp3", "audio/mpeg"),
        ("jfk.ogg", "audio/ogg"),
        ("jfk.m4a", "audio/m4a"),
        ("jfk.webm", "audio/webm"),
        ("jfk.au", "audio/basic"),
        ("jfk_headerless.ulaw", "audio/basic"),
        ("jfk.mp3", "application/octet-stream"),  # container detected
        ("jfk.ogg", "audio/wav"),  # mislabelled: read by what it is
    ],
)
async def test_each_container(client: TestClient, name: str, content_type: str) -> None:
    result = await transcribe_json(client, FIXTURES / name, content_type)
    assert wer(JFK_TEXT, result["text"]) <= 0.15, result["text"]


async def test_word_timestamps_off_and_no_vad(client: TestClient) -> None:
    result = await transcribe_json(
        client, corpus("stereo_diarization.wav"), channel_layout="1", word_timestamps="false", vad="false"
    )
    assert all(seg["words"] == [] for seg in result["channels"][0]["segments"])
    assert wer(STEREO_TEXTS[1], result["text"]) <= 0.2


async def test_prompt_and_hotwords_are_accepted(client: TestClient) -> None:
    result = await transcribe_json(
        client, corpus("stereo_diarization.wav"), channel_layout="1", prompt="Horizon.", hotwords="horizon",
        beam_size=2,
    )  # fmt: skip
    assert "horizon" in result["text"].lower()


async def test_simultaneous_jobs_keep_their_own_channels(
    aiohttp_client: ClientFactory, tmp_path: Path, tiny_registry: ModelRegistry
) -> None:
    """Several real jobs at once on two engine slots: each result holds its own file's words."""
    import asyncio

    config = make_config(tmp_path, workers=2)
    client = await aiohttp_client(create_app(config, registry=tiny_registry))
    cases = [
        (
            FIXTURES / "two_streams.mp4",
            "video/mp4",
            {"channel_layout": "1.1,0.0"},
            [STEREO_TEXTS[1], JFK_TEXT],
        ),
        (corpus("stereo_diarization.wav"), "audio/wav", {}, list(STEREO_TEXTS)),
        (FIXTURES / "stereo_mulaw_8k.wav", "audio/wav", {"channel_layout": "1"}, [STEREO_TEXTS[1]]),
        (FIXTURES / "jfk.mp3", "audio/mpeg", {}, [JFK_TEXT]),
    ]
    results = await asyncio.gather(
        *(transcribe_json(client, path, kind, **params) for path, kind, params, _ in cases)
    )
    for result, (_, _, _, expected) in zip(results, cases, strict=True):
        texts = [" ".join(s["text"] for s in channel["segments"]) for channel in result["channels"]]
        assert len(texts) == len(expected)
        for reference, text in zip(expected, texts, strict=True):
            assert wer(reference, text) <= 0.15, (reference, text)
