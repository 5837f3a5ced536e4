"""No speech lost without a word (issue 27): a stretch of speech the decoder skipped is decoded again on its
own, and what is still missing is reported (`gaps`, `transcribed_s`, a warning in the html view). The
decoder is a stand-in that skips what it is told to; the audio, the VAD and the app are real."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from aiohttp.test_utils import TestClient

from speechsvc.app import create_app
from speechsvc.asr.engine import ChannelTranscript, ProgressFn, Segment, TranscribeOptions, Word
from speechsvc.asr.models import ModelRegistry, ModelSpec
from tests.conftest import make_config, write_wav
from tests.dialogue_calls import call
from tests.integration.helpers import post_audio, transcribe_json

ClientFactory = Callable[..., Awaitable[TestClient]]
RATE = 16000
SCRIPT = (("a1", 0.0), ("a2", 3.0), ("a4", 3.0))  # three lines of the agent, three seconds apart


class Skipping:
    """Hears the loud 10 ms frames of what it is given as words, one per stretch of sound, but skips
    everything from `skip_from_s` on in a call of more than `long_s` (as Whisper skipped a stretch); a
    short clip (a stretch decoded again) it hears whole, unless `deaf`."""

    name = "tiny.en"
    multilingual = False

    def __init__(self, skip_from_s: float, long_s: float = 15.0, deaf: bool = False) -> None:
        self.skip_from_s, self.long_s, self.deaf = skip_from_s, long_s, deaf
        self.calls: list[tuple[float, TranscribeOptions]] = []

    def transcribe(
        self, audio: npt.NDArray[np.float32], options: TranscribeOptions, on_progress: ProgressFn
    ) -> ChannelTranscript:
        duration = len(audio) / RATE
        self.calls.append((duration, options))
        until = self.skip_from_s if duration > self.long_s else (0.0 if self.deaf else duration)
        frames = np.abs(audio[: len(audio) // 160 * 160]).reshape(-1, 160).max(axis=1) >= 0.01
        segments, start = [], None
        for number, loud in enumerate([*frames.tolist(), False]):
            at = number * 0.01
            if loud and start is None:
                start = at
            elif (
                not loud
                and start is not None
                and (number + 30 >= len(frames) or not frames[number : number + 30].any())
            ):
                if at <= until:
                    word = Word(round(start, 3), round(at, 3), " said", 0.9)
                    segments.append(Segment(word.start, word.end, " said", (word,)))
                start = None
        on_progress(duration)
        return ChannelTranscript("en", 1.0, round(duration, 3), round(duration, 3), segments)

    def close(self) -> None:
        pass


def registry_of(transcriber: Skipping, tmp_path: Path) -> ModelRegistry:
    def loader(spec: ModelSpec) -> Skipping:
        return transcriber

    return ModelRegistry("tiny.en", tmp_path / "models", loader)


@pytest.fixture
def mono_call(tmp_path: Path) -> tuple[Path, list[tuple[float, float]]]:
    found = call(SCRIPT)
    return write_wav(tmp_path / "call.wav", [found.channels[0]]), [(s.start, s.end) for s in found.truth]


async def test_a_skipped_stretch_is_decoded_again_on_its_own(
    aiohttp_client: ClientFactory, tmp_path: Path, mono_call: tuple[Path, list[tuple[float, float]]]
) -> None:
    path, lines = mono_call
    skipping = Skipping(skip_from_s=lines[1][1] + 0.5)  # the third line is never heard in the whole call
    client = await aiohttp_client(create_app(make_config(tmp_path), registry=registry_of(skipping, tmp_path)))
    result = await transcribe_json(client, path, prompt="Acme")
    (channel,) = result["channels"]
    assert channel["gaps"] == [] and channel["transcribed_s"] == channel["speech_s"]
    heard = [w["start"] for seg in channel["segments"] for w in seg["words"]]
    assert any(lines[2][0] - 0.3 <= start <= lines[2][1] for start in heard), heard  # the third line
    redo = [options for duration, options in skipping.calls if duration < 15]
    assert len(redo) == 1 and len(skipping.calls) == 2  # that stretch alone, once
    assert redo[0].prompt is None and redo[0].word_timestamps  # no previous text, no prompt


async def test_what_is_still_missing_is_reported(
    aiohttp_client: ClientFactory, tmp_path: Path, mono_call: tuple[Path, list[tuple[float, float]]]
) -> None:
    path, lines = mono_call
    deaf = Skipping(skip_from_s=lines[1][1] + 0.5, deaf=True)
    client = await aiohttp_client(create_app(make_config(tmp_path), registry=registry_of(deaf, tmp_path)))
    result = await transcribe_json(client, path)
    (channel,) = result["channels"]
    (gap,) = channel["gaps"]
    assert gap["start"] <= lines[2][0] and gap["end"] >= lines[2][1] - 0.5, (gap, lines[2])
    assert channel["transcribed_s"] == pytest.approx(
        channel["speech_s"] - (gap["end"] - gap["start"]), abs=0.01
    )
    page = await (await post_audio(client, path, format="html", wait=60)).text()
    assert 'class="warning"' in page and "Speech without text" in page


async def test_a_call_with_every_word_heard_is_decoded_once(
    aiohttp_client: ClientFactory, tmp_path: Path, mono_call: tuple[Path, list[tuple[float, float]]]
) -> None:
    path, _ = mono_call
    hearing = Skipping(skip_from_s=1000.0)
    client = await aiohttp_client(create_app(make_config(tmp_path), registry=registry_of(hearing, tmp_path)))
    result = await transcribe_json(client, path, word_timestamps="false")
    assert len(hearing.calls) == 1 and result["channels"][0]["gaps"] == []
    assert hearing.calls[0][1].word_timestamps  # aligned inside, for the timeline
    assert all(seg["words"] == [] for seg in result["channels"][0]["segments"])  # left out, as asked
