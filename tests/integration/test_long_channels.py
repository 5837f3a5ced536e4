"""Long channels: cut at pauses into pieces (sequential decoder), so a long call cannot hold the engine
slots while short calls wait; and the pieces, joined, read as the whole channel does."""

from __future__ import annotations

import itertools
import threading
import time
from functools import cache

import numpy as np
import numpy.typing as npt
import pytest

from speechsvc.asr.engine import SAMPLE_RATE_HZ, TranscribeOptions
from speechsvc.asr.models import ModelRegistry
from speechsvc.asr.pieces import cut_points, pieces, speech_regions
from speechsvc.asr.scheduler import FairPool
from speechsvc.audio.decode import decode_channels
from speechsvc.audio.layout import ChannelRef
from speechsvc.service.pipeline import _transcribe_in_pieces
from tests.conftest import JFK_TEXT, FakeTranscriber, corpus
from tests.integration.helpers import wer

GAP_S = 1.5


@cache
def jfk() -> npt.NDArray[np.float32]:
    (samples,) = decode_channels(corpus("jfk.flac"), "audio/flac", [ChannelRef(0, 0)], max_duration_s=60)
    return samples


def speech(repeats: int) -> npt.NDArray[np.float32]:
    """jfk `repeats` times, with a pause after each."""
    gap = np.zeros(int(GAP_S * SAMPLE_RATE_HZ), dtype=np.float32)
    return np.concatenate([part for _ in range(repeats) for part in (jfk(), gap)])


def test_long_channels_are_cut_in_pauses() -> None:
    audio = speech(7)  # 87.5 s
    cuts = cut_points(audio, piece_s=20)
    assert len(cuts) >= 2
    loudness = float(np.sqrt(np.mean(audio**2)))
    for cut in cuts:  # in a pause (the recording's background noise), not in a word
        around = audio[cut - 1600 : cut + 1600]
        assert float(np.sqrt(np.mean(around**2))) < 0.1 * loudness
    spans = pieces(audio, piece_s=20)
    assert spans[0][0] == 0 and spans[-1][1] == len(audio)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert all(end - start >= 10 * SAMPLE_RATE_HZ for start, end in spans)
    assert all(end - start >= 20 * SAMPLE_RATE_HZ for start, end in spans[:-1])
    assert cut_points(speech(2), piece_s=20) == []  # short channels stay whole
    # silence is cut too, every piece_s: a long silent channel is never one piece (bounded memory)
    silent = np.zeros(90 * SAMPLE_RATE_HZ, dtype=np.float32)
    assert cut_points(silent, piece_s=20) == [s * SAMPLE_RATE_HZ for s in (20, 40, 60, 80)]


def test_vad_in_blocks_finds_the_speech_of_the_whole_channel() -> None:
    audio = speech(7)  # 87.5 s

    def mask(regions: list[tuple[int, int]]) -> npt.NDArray[np.bool_]:
        covered = np.zeros(len(audio), dtype=bool)
        for start, end in regions:
            covered[start:end] = True
        return covered

    whole = mask(speech_regions(audio, block_s=1000))
    blocks = mask(speech_regions(audio, block_s=20))  # boundaries inside words: regions joined again
    assert float(np.mean(whole == blocks)) >= 0.95
    loudness = float(np.sqrt(np.mean(audio**2)))
    for cut in cut_points(audio, piece_s=20):
        assert float(np.sqrt(np.mean(audio[cut - 1600 : cut + 1600] ** 2))) < 0.1 * loudness


class SlowFake(FakeTranscriber):
    """Takes 10 ms per second of audio, and records when each call ended."""

    def __init__(self) -> None:
        super().__init__(delay_s=0.01)
        self.finished: list[tuple[float, float]] = []  # (audio seconds, end time)

    def transcribe(self, audio, options, on_progress):  # type: ignore[no-untyped-def]
        result = super().transcribe(audio, options, on_progress)
        self.finished.append((len(audio) / SAMPLE_RATE_HZ, time.monotonic()))
        return result


def run_jobs(piece_s: float) -> dict[str, float]:
    """A long job, then a short one just after, on one engine slot; when each finished."""
    fake, pool = SlowFake(), FairPool(1)
    ended: dict[str, float] = {}

    def job(name: str, audio: npt.NDArray[np.float32]) -> None:
        _transcribe_in_pieces(name, [audio], TranscribeOptions(), fake, pool, lambda _: None, piece_s)
        ended[name] = time.monotonic()

    long, short = speech(10), speech(1)
    threads = [threading.Thread(target=job, args=("long", long))]
    threads[0].start()
    time.sleep(0.2)  # the long job's first task is running
    threads.append(threading.Thread(target=job, args=("short", short)))
    threads[1].start()
    for thread in threads:
        thread.join(60)
    pool.close()
    return ended


def test_a_long_call_does_not_starve_a_short_one() -> None:
    ended = run_jobs(piece_s=20)
    assert ended["short"] < ended["long"]  # the short call got the slot between two pieces


def test_whole_channels_would_starve_it() -> None:
    """The same two jobs with pieces as long as the call: the short one waits for the whole long one
    (this is what the test above guards against)."""
    ended = run_jobs(piece_s=10_000)
    assert ended["short"] > ended["long"]


def test_progress_moves_piece_by_piece_and_the_pieces_join_on_the_channel_timeline() -> None:
    audio = speech(7)
    seen: list[float] = []
    fake = FakeTranscriber()
    (transcript,) = _transcribe_in_pieces("job", [audio], TranscribeOptions(), fake, None, seen.append, 20)
    assert fake.calls == len(pieces(audio, 20)) > 1
    assert seen == sorted(seen) and seen[-1] == pytest.approx(100.0)
    starts = [s.start for s in transcript.segments]
    assert starts == sorted(starts)
    assert transcript.duration_s == pytest.approx(len(audio) / SAMPLE_RATE_HZ, abs=0.01)
    # the fake makes one segment per whole second of each piece, starting at the piece's start
    offsets = {round(start / SAMPLE_RATE_HZ, 3) for start, _ in pieces(audio, 20)}
    assert offsets <= set(starts)
    assert transcript.segments[-1].end == pytest.approx(len(audio) / SAMPLE_RATE_HZ, abs=1.0)


@pytest.mark.model
def test_a_channel_in_pieces_reads_as_the_whole_channel(tiny_registry: ModelRegistry) -> None:
    engine = tiny_registry.get()
    audio = speech(4)
    options = TranscribeOptions()
    (pieced,) = _transcribe_in_pieces("job", [audio], options, engine, None, lambda _: None, 15)
    assert len(pieces(audio, 15)) == 3
    known = " ".join([JFK_TEXT] * 4)
    pieced_text = " ".join(s.text for s in pieced.segments)
    # the whole channel reads at WER 0.000 (case and punctuation aside): the pieces lose nothing
    # (prompted with the previous piece's text, they scored 0.068, inventing "Thank you." at piece ends)
    assert wer(known, pieced_text) <= 0.03, pieced_text
    words = [w for s in pieced.segments for w in s.words]
    assert [w.start for w in words] == sorted(w.start for w in words)
    # each utterance's first word lies near where that utterance starts on the channel
    period = len(jfk()) / SAMPLE_RATE_HZ + GAP_S
    firsts = [w.start for w in words if w.word.strip().lower() == "and"]
    assert len(firsts) == 4
    assert all(abs(start - n * period) < 1.0 for n, start in enumerate(firsts))
