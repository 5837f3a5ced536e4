"""The speaker model on a thread beside the decoder (service/pipeline.py): its spans come back in channel
order, its error reaches the job's thread, and stop() ends it between blocks of speech."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest

from speechsvc import diarize
from speechsvc.diarize import Span, SpeakerCount
from speechsvc.service.pipeline import _SpeakersBeside


def _channels(count: int) -> list[np.ndarray]:
    return [np.full(160, float(n), np.float32) for n in range(count)]


def test_spans_come_back_per_channel_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    def turns(audio: np.ndarray, count: SpeakerCount, should_stop: Callable[[], bool]) -> list[Span]:
        return [Span(0.0, 1.0, int(audio[0]))]

    monkeypatch.setattr(diarize, "speaker_turns", turns)
    beside = _SpeakersBeside(_channels(3), SpeakerCount())
    assert [spans[0].speaker for spans in beside.result()] == [0, 1, 2]
    beside.stop()


def test_an_error_reaches_the_jobs_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    def turns(audio: np.ndarray, count: SpeakerCount, should_stop: Callable[[], bool]) -> list[Span]:
        raise MemoryError("speaker model")

    monkeypatch.setattr(diarize, "speaker_turns", turns)
    beside = _SpeakersBeside(_channels(1), SpeakerCount())
    with pytest.raises(MemoryError, match="speaker model"):
        beside.result()


def test_stop_ends_it_when_the_model_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A job that ends (canceled, or the decoder failed) does not leave the speaker model running."""
    started = threading.Event()
    asked: list[int] = []

    def turns(audio: np.ndarray, count: SpeakerCount, should_stop: Callable[[], bool]) -> list[Span]:
        asked.append(int(audio[0]))
        started.set()
        while not should_stop():  # a block of speech at a time
            threading.Event().wait(0.01)
        return []

    monkeypatch.setattr(diarize, "speaker_turns", turns)
    beside = _SpeakersBeside(_channels(3), SpeakerCount())
    assert started.wait(5)
    beside.stop()
    assert not beside._thread.is_alive()
    assert asked == [0]  # the channels after it were never started
