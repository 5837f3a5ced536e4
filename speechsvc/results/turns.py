"""Turns as they happened: a channel's segments cut where its own words pause, or where another channel
speaks in the gap, and timed by their words.

Whisper gives a segment the time of the window it decoded it in: its start can lie seconds before the
first word (the silence before it), and a segment can run on over a pause in which the other party
spoke. Merged by segment times, the customer's answer then came before the agent's question, and the
talk-time and overlap stats counted those pauses as speech. Cut and timed by words, the timeline, every
format and the stats follow the speech.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
from collections.abc import Sequence

from speechsvc.asr.engine import MIN_WORD_S, ChannelTranscript, Segment, Word

# A pause this long inside one segment starts a new one, whoever speaks in it. Measured with tiny.en and
# base on the corpus, the generated voices and the dialogue calls (benchmarks/bench_turns.py): pauses after
# a comma or inside a sentence at most 0.66 s (99th percentile 0.40 / 0.48 s), between two sentences of
# one turn 0.02 to 0.54 s; every pause of 2.9 s and more inside a segment was two turns Whisper had joined.
PAUSE_S = 1.0
# A shorter pause is still a turn boundary when another channel's word falls inside it (its middle).
TURN_GAP_S = 0.2
# Silero's speech regions reach this far into the silence on each side (faster-whisper's VadOptions
# speech_pad_ms): a segment's first word starts no earlier than its region less this, its last word ends no
# later (the alignment tends to give the edge words some of the silence beside them).
VAD_PAD_S = 0.4

Stretch = tuple[float, float]


def cut_turns(
    transcripts: Sequence[ChannelTranscript], speech: Sequence[Sequence[Stretch]] | None = None
) -> list[ChannelTranscript]:
    """Every channel's segments cut at pauses (PAUSE_S) and at gaps where another channel speaks
    (TURN_GAP_S), each timed by its first and last word; with each channel's VAD speech regions, those
    two words kept inside their region's speech. Segments without words stay as they are."""
    middles = [sorted((w.start + w.end) / 2 for s in t.segments for w in s.words) for t in transcripts]
    out = []
    for number, transcript in enumerate(transcripts):
        others = sorted(m for other, found in enumerate(middles) if other != number for m in found)
        regions = list(speech[number]) if speech is not None else []
        segments = [
            part
            for segment in transcript.segments
            for part in _cut(_inside_speech(segment, regions, transcript.duration_s), others)
        ]
        out.append(dataclasses.replace(transcript, segments=segments))
    return out


def _inside_speech(segment: Segment, regions: list[Stretch], duration_s: float) -> Segment:
    """The segment's first word starting no earlier than the speech of the VAD region it lies in, its last
    word ending no later (a region at the edge of the audio has no padding there to take off)."""
    if not segment.words or not regions:
        return segment
    words = list(segment.words)
    first, last = words[0], words[-1]
    region = _region_of(regions, (first.start + first.end) / 2)
    if region is not None and region[0] > 0:
        start = min(max(first.start, region[0] + VAD_PAD_S), first.end - MIN_WORD_S)
        words[0] = dataclasses.replace(first, start=round(max(first.start, start), 3))
    last = words[-1]
    region = _region_of(regions, (last.start + last.end) / 2)
    if region is not None and region[1] < duration_s:
        end = max(min(last.end, region[1] - VAD_PAD_S), last.start + MIN_WORD_S)
        words[-1] = dataclasses.replace(last, end=round(min(last.end, end), 3))
    return dataclasses.replace(segment, words=tuple(words))


def _region_of(regions: list[Stretch], at: float) -> Stretch | None:
    index = bisect.bisect_right(regions, (at, float("inf"))) - 1
    return regions[index] if index >= 0 and regions[index][0] <= at <= regions[index][1] else None


def _cut(segment: Segment, others: list[float]) -> list[Segment]:
    words = list(segment.words)
    if not words:
        return [segment]
    runs: list[list[Word]] = [[words[0]]]
    for before, word in itertools.pairwise(words):
        gap = word.start - before.end
        if gap > PAUSE_S or (gap >= TURN_GAP_S and _speaks_between(others, before.end, word.start)):
            runs.append([word])
        else:
            runs[-1].append(word)
    whole = len(runs) == 1
    return [
        dataclasses.replace(
            segment,
            start=run[0].start,
            end=run[-1].end,
            text=segment.text if whole else "".join(word.word for word in run),
            words=tuple(run),
            tokens=segment.tokens if whole else (),  # the tokens belong to the uncut segment
        )
        for run in runs
    ]


def _speaks_between(middles: list[float], start: float, end: float) -> bool:
    at = bisect.bisect_right(middles, start)
    return at < len(middles) and middles[at] < end
