"""Speakers onto a transcript: each word takes the speaker who holds most of its time, a turn too short
to be one (a word or two inside the other's turn) goes back to the speaker around it, and segments are cut
where the speaker changes. Speakers are named spk_0, spk_1, … in order of first appearance (API.md §2a)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from speechsvc.asr.engine import ChannelTranscript, Segment, Word
from speechsvc.diarize.speakers import Span

MIN_TURN_S = 0.5  # a shorter run of words between two runs of one other speaker is that speaker's


def speaker_at(spans: Sequence[Span], start: float, end: float) -> int | None:
    """The speaker holding most of [start, end]; off speech, the nearest one; None without spans."""
    if not spans:
        return None
    held: dict[int, float] = {}
    for span in spans:
        overlap = min(end, span.end) - max(start, span.start)
        if overlap > 0:
            held[span.speaker] = held.get(span.speaker, 0.0) + overlap
    if held:
        return max(held, key=lambda speaker: held[speaker])
    middle = (start + end) / 2
    return min(spans, key=lambda span: max(span.start - middle, middle - span.end)).speaker


def label_transcript(
    transcript: ChannelTranscript, spans: Sequence[Span], keep_words: bool
) -> ChannelTranscript:
    """The transcript with a speaker on every segment and word, segments cut at speaker changes; without
    `keep_words` the words (decoded only to place the cuts) are dropped afterwards."""
    words = [
        (n, w, speaker_at(spans, w.start, w.end))
        for n, seg in enumerate(transcript.segments)
        for w in seg.words
    ]
    speakers = _absorb_short_turns([(w.start, w.end, s) for _, w, s in words])
    by_segment: dict[int, list[tuple[Word, int | None]]] = {}
    for (number, word, _), speaker in zip(words, speakers, strict=True):
        by_segment.setdefault(number, []).append((word, speaker))
    names: dict[int, str] = {}

    def name(speaker: int | None) -> str | None:
        return None if speaker is None else names.setdefault(speaker, f"spk_{len(names)}")

    segments: list[Segment] = []
    for number, segment in enumerate(transcript.segments):
        labelled = by_segment.get(number)
        if not labelled:  # no words: the segment as a whole
            segments.append(dataclasses.replace(segment, speaker=name(speaker_at(spans, segment.start, segment.end)),
                                                words=()))  # fmt: skip
            continue
        runs: list[list[tuple[Word, int | None]]] = []
        for word, speaker in labelled:
            if runs and runs[-1][-1][1] == speaker:
                runs[-1].append((word, speaker))
            else:
                runs.append([(word, speaker)])
        for index, run in enumerate(runs):
            label = name(run[0][1])
            run_words = tuple(dataclasses.replace(word, speaker=label) for word, _ in run)
            whole = len(runs) == 1
            segments.append(
                dataclasses.replace(
                    segment,
                    start=segment.start if index == 0 else run_words[0].start,
                    end=segment.end if index == len(runs) - 1 else run_words[-1].end,
                    text=segment.text if whole else "".join(word.word for word in run_words),
                    words=run_words if keep_words else (),
                    tokens=segment.tokens if whole else (),  # the tokens belong to the uncut segment
                    speaker=label,
                )
            )
    return dataclasses.replace(transcript, segments=segments)


def _absorb_short_turns(words: list[tuple[float, float, int | None]]) -> list[int | None]:
    """Runs of one speaker shorter than MIN_TURN_S, between runs of one same other speaker, join them."""
    speakers = [speaker for _, _, speaker in words]
    runs: list[tuple[int, int]] = []  # [first, last] word index of each run
    for index, speaker in enumerate(speakers):
        if runs and speakers[runs[-1][0]] == speaker:
            runs[-1] = (runs[-1][0], index)
        else:
            runs.append((index, index))
    for number in range(1, len(runs) - 1):
        first, last = runs[number]
        before, after = speakers[runs[number - 1][0]], speakers[runs[number + 1][0]]
        if before == after and words[last][1] - words[first][0] < MIN_TURN_S:
            speakers[first : last + 1] = [before] * (last - first + 1)
    return speakers
