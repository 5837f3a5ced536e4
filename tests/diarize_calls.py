"""Mono calls with known turns, mixed from real and generated voices: the corpus's three real speakers
(JFK, and the two sides of stereo_diarization.wav) and three espeak-ng voices (fixtures/speakers/). Each
voice is cut at its pauses into turns of at least `min_turn_s`, and the turns of two or three speakers
alternate on one channel. Used by the diarization tests and benchmark, with the two measures of the
issue: the share of speech time on the right speaker (after the best mapping) and DER with a collar."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from speechsvc.asr.pieces import speech_regions
from speechsvc.audio.decode import decode_channels
from speechsvc.audio.layout import ChannelRef
from speechsvc.diarize.speakers import Span
from tests.conftest import FIXTURES, corpus

Samples = npt.NDArray[np.float32]
RATE = 16000
FRAME_S = 0.01
GENERATED = ("m3", "f4", "f2")
REAL = ("jfk", "wizard", "horizon")


@cache
def voices() -> dict[str, Samples]:
    (jfk,) = decode_channels(corpus("jfk.flac"), "audio/flac", [ChannelRef(0, 0)], max_duration_s=60)
    wizard, horizon = decode_channels(
        corpus("stereo_diarization.wav"), "audio/wav", [ChannelRef(0, 0), ChannelRef(0, 1)], max_duration_s=60
    )
    out = {"jfk": jfk, "wizard": wizard, "horizon": horizon}
    for name, file in (("m3", "voice_en_us_m3.ogg"), ("f4", "voice_en_f4.ogg"), ("f2", "voice_en_us_f2.ogg")):
        (out[name],) = decode_channels(
            FIXTURES / "speakers" / file, "audio/ogg", [ChannelRef(0, 0)], max_duration_s=60
        )
    return out


@cache
def turns_of(name: str, min_turn_s: float) -> tuple[tuple[int, int], ...]:
    """The voice cut at pauses (300 ms or more) into pieces of at least min_turn_s of audio."""
    audio = voices()[name]
    regions = speech_regions(audio, min_silence_ms=300)
    pieces: list[tuple[int, int]] = []
    start = regions[0][0]
    for (_, end), following in itertools.zip_longest(regions, regions[1:]):
        if end - start >= min_turn_s * RATE or following is None:
            pieces.append((start, end))
            if following is not None:
                start = following[0]
    return tuple(pieces)


@dataclass(frozen=True)
class MixedCall:
    audio: Samples
    turns: tuple[tuple[float, float, str], ...]  # the truth: start, end (s), speaker name

    @property
    def duration_s(self) -> float:
        return len(self.audio) / RATE


def mixed_call(names: tuple[str, ...], min_turn_s: float = 2.0, gap_s: float = 0.4,
               length_s: float = 60.0) -> MixedCall:  # fmt: skip
    """The speakers' turns in rotation until length_s, `gap_s` of silence between two turns (the voices
    are used again from the start when a speaker's turns run out)."""
    parts: list[Samples] = []
    truth: list[tuple[float, float, str]] = []
    at = 0
    gap = np.zeros(int(gap_s * RATE), np.float32)
    cursor = dict.fromkeys(names, 0)
    for name in itertools.cycle(names):
        pieces = turns_of(name, min_turn_s)
        start, end = pieces[cursor[name] % len(pieces)]
        cursor[name] += 1
        if (at + end - start) / RATE > length_s and truth:
            break
        parts += [voices()[name][start:end], gap]
        truth.append((at / RATE, (at + end - start) / RATE, name))
        at += end - start + len(gap)
    return MixedCall(np.concatenate(parts).astype(np.float32), tuple(truth))


def _frames(spans: list[tuple[float, float, object]], count: int) -> list[object]:
    labels: list[object] = [None] * count
    for start, end, speaker in spans:
        for frame in range(round(start / FRAME_S), min(count, round(end / FRAME_S))):
            labels[frame] = speaker
    return labels


def _mapping(truth: list[object], found: list[object]) -> dict[object, object]:
    """The one-to-one mapping of found speakers to true ones that puts the most time right."""
    from scipy.optimize import linear_sum_assignment

    true_names = sorted({t for t in truth if t is not None}, key=str)
    found_names = sorted({f for f in found if f is not None}, key=str)
    overlap = np.zeros((len(found_names), len(true_names)))
    for t, f in zip(truth, found, strict=True):
        if t is not None and f is not None:
            overlap[found_names.index(f), true_names.index(t)] += 1
    rows, cols = linear_sum_assignment(-overlap)
    return {found_names[r]: true_names[c] for r, c in zip(rows, cols, strict=True)}


def scores(call: MixedCall, spans: list[Span], collar_s: float = 0.25) -> tuple[float, float]:
    """(share of true speech time labelled with the right speaker, DER with a collar around each true
    boundary, where nothing is counted)."""
    count = int(np.ceil(call.duration_s / FRAME_S)) + 1
    truth = _frames(list(call.turns), count)
    found = _frames([(s.start, s.end, s.speaker) for s in spans], count)
    mapping = _mapping(truth, found)
    speech = [i for i, t in enumerate(truth) if t is not None]
    right = sum(1 for i in speech if mapping.get(found[i]) == truth[i])
    collar = round(collar_s / FRAME_S)
    scored = np.ones(count, bool)
    for start, end, _ in call.turns:
        for edge in (round(start / FRAME_S), round(end / FRAME_S)):
            scored[max(0, edge - collar) : edge + collar] = False
    reference = errors = 0
    for i in np.flatnonzero(scored).tolist():
        t, f = truth[i], found[i]
        reference += t is not None
        if t is not None and (f is None or mapping.get(f) != t):
            errors += 1  # missed speech or the wrong speaker
        elif t is None and f is not None:
            errors += 1  # speech where there was none
    return right / max(1, len(speech)), errors / max(1, reference)
