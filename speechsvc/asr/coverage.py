"""No speech lost without a word: what the VAD calls speech and the decoder left without words.

Whisper's sequential decoder can skip a stretch of speech (a window it reads as silence, a seek that
jumps past a short utterance): nothing in its output says so. The pipeline compares the channel's VAD
speech with the words found, decodes every stretch left without words again on its own, and reports what
is still missing (`gaps`, `transcribed_s`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from speechsvc.asr.engine import SAMPLE_RATE_HZ, ChannelTranscript, Segment
from speechsvc.asr.pieces import Regions, shifted

Stretch = tuple[float, float]  # seconds

# Silero's speech regions carry 0.4 s of padding on each side (faster-whisper's VadOptions), and a word's
# alignment can end early: speech within this reach of a word counts as that word's.
WORD_REACH_S = 0.6
# Uncovered speech shorter than this is a breath, a click or the VAD's own padding, not lost words.
MIN_GAP_S = 1.0
# Around a stretch decoded again, so that its first and last syllables are whole.
REDECODE_PAD_S = 0.2


def speech_stretches(regions: Regions) -> list[Stretch]:
    """The channel's VAD speech (speechsvc.asr.pieces.speech_regions, sample offsets) in seconds."""
    return [(int(start) / SAMPLE_RATE_HZ, int(end) / SAMPLE_RATE_HZ) for start, end in regions]


def uncovered(speech: Sequence[Stretch], segments: Sequence[Segment]) -> list[Stretch]:
    """The parts of `speech` at least MIN_GAP_S long with no word within WORD_REACH_S (a segment without
    words counts by its own span)."""
    spans = sorted(
        [(w.start - WORD_REACH_S, w.end + WORD_REACH_S) for s in segments for w in s.words]
        + [(s.start, s.end) for s in segments if not s.words and s.text.strip()]
    )
    missing: list[Stretch] = []
    for start, end in speech:
        at = start
        for span_start, span_end in spans:
            if span_end <= at:
                continue
            if span_start >= end:
                break
            if span_start - at >= MIN_GAP_S:
                missing.append((round(at, 3), round(span_start, 3)))
            at = max(at, span_end)
        if end - at >= MIN_GAP_S:
            missing.append((round(at, 3), round(end, 3)))
    return missing


def with_redecoded(
    transcript: ChannelTranscript, parts: Sequence[tuple[float, ChannelTranscript]]
) -> ChannelTranscript:
    """The channel's segments with those of the stretches decoded again ((offset s, transcript) each)
    put in their places on the channel's timeline."""
    found = [segment for offset, part in parts for segment in shifted(part, offset) if segment.text.strip()]
    segments = sorted([*transcript.segments, *found], key=lambda s: (s.start, s.end))
    return dataclasses.replace(transcript, segments=segments)


def report(transcript: ChannelTranscript, speech: Sequence[Stretch]) -> ChannelTranscript:
    """The transcript with what is still missing: `gaps`, and `transcribed_s`, its `speech_s` less them."""
    gaps = tuple(uncovered(speech, transcript.segments))
    missing_s = sum(end - start for start, end in gaps)
    transcribed_s = round(max(0.0, transcript.speech_s - missing_s), 3)
    return dataclasses.replace(transcript, gaps=gaps, transcribed_s=transcribed_s)
