"""Long channels in pieces, for the sequential decoder: fairness below the channel.

An engine slot runs one task at a time. Were a task a whole channel, a one-hour call would hold its
slots for minutes while short calls queued behind it wait. So a channel longer than 1.5 * `piece_s` is
cut at pauses of a second or more into pieces of at least `piece_s`; each piece is its own task, queued
behind the other jobs' tasks. A piece is decoded as the start of a recording: prompting it with the text
of the piece before made tiny.en invent text ("Thank you.") in the silence at the end of the piece.
Pieces after the first keep the language the first one found.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from speechsvc.asr.engine import SAMPLE_RATE_HZ, ChannelTranscript, Segment, Word

PIECE_S = 120.0
MIN_PAUSE_MS = 1000  # cut only where the speaker pauses at least this long (not between two words)
VAD_BLOCK_S = (
    120.0  # VAD runs on blocks this long: its memory stays bounded (Silero holds ~100 MB per minute)
)

Regions = list[tuple[int, int]]  # speech_regions' answer: sample offsets


def speech_regions(
    audio: npt.NDArray[np.float32],
    block_s: float = VAD_BLOCK_S,
    min_silence_ms: int = MIN_PAUSE_MS,
    threshold: float = 0.5,
) -> Regions:
    """Silero VAD's speech regions (sample offsets), found block by block so that a long channel (a
    memory-mapped file) is never copied whole; a region cut by a block boundary is joined again.
    `threshold`: the speech probability a frame needs (the library's default, 0.5, unless given)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(min_silence_duration_ms=min_silence_ms, threshold=threshold)
    block = int(block_s * SAMPLE_RATE_HZ)
    join_gap = min_silence_ms * SAMPLE_RATE_HZ // 1000
    regions: list[tuple[int, int]] = []
    for offset in range(0, len(audio), block):
        part = np.asarray(audio[offset : offset + block], dtype=np.float32)
        for found in get_speech_timestamps(part, options):
            start, end = found["start"] + offset, found["end"] + offset
            if regions and start - regions[-1][1] < join_gap and offset and start - offset < join_gap:
                regions[-1] = (regions[-1][0], end)
            else:
                regions.append((start, end))
    return regions


def cut_points(
    audio: npt.NDArray[np.float32], piece_s: float = PIECE_S, speech: Regions | None = None
) -> list[int]:
    """Where to cut a channel (sample offsets): in the first pause after every piece_s of audio, in its
    middle when it is short; a long silence is cut every piece_s, so that no piece of silence holds more
    than piece_s either. Empty for a channel shorter than 1.5 * piece_s, or speech without a pause.
    `speech`: the channel's speech_regions when the caller has them already (the VAD reads it once)."""
    if len(audio) < 1.5 * piece_s * SAMPLE_RATE_HZ:
        return []
    if speech is None:
        speech = speech_regions(audio)
    edges = [0, *(bound for region in speech for bound in region), len(audio)]
    pauses = [(edges[i], edges[i + 1]) for i in range(0, len(edges), 2) if edges[i + 1] > edges[i]]
    piece = int(piece_s * SAMPLE_RATE_HZ)
    margin = MIN_PAUSE_MS * SAMPLE_RATE_HZ // 2000  # half a minimal pause: away from the words
    cuts: list[int] = []
    start = 0
    for before, after in pauses:
        middle = (before + after) // 2
        earliest, latest = min(before + margin, middle), max(after - margin, middle)
        while (cut := max(start + piece, earliest)) <= latest and len(audio) - cut >= piece // 2:
            cuts.append(cut)
            start = cut
    return cuts


def pieces(
    audio: npt.NDArray[np.float32], piece_s: float = PIECE_S, speech: Regions | None = None
) -> list[tuple[int, int]]:
    """The channel as (start, end) sample ranges: one range unless it is long."""
    bounds = [0, *cut_points(audio, piece_s, speech), len(audio)]
    return list(itertools.pairwise(bounds))


def shifted(transcript: ChannelTranscript, offset_s: float) -> list[Segment]:
    """A piece's segments on the channel's timeline."""
    if offset_s == 0:
        return list(transcript.segments)
    frames = round(offset_s * 100)  # Whisper's seek counts 10 ms frames
    return [
        replace(
            segment,
            start=round(segment.start + offset_s, 3),
            end=round(segment.end + offset_s, 3),
            words=tuple(
                Word(round(w.start + offset_s, 3), round(w.end + offset_s, 3), w.word, w.confidence)
                for w in segment.words
            ),
            seek=segment.seek + frames,
        )
        for segment in transcript.segments
    ]


def joined(parts: list[tuple[float, ChannelTranscript]]) -> ChannelTranscript:
    """The pieces of one channel, (offset in seconds, transcript) in order, as one transcript."""
    first = parts[0][1]
    return ChannelTranscript(
        language=first.language,
        language_probability=first.language_probability,
        duration_s=round(sum(part.duration_s for _, part in parts), 3),
        speech_s=round(sum(part.speech_s for _, part in parts), 3),
        segments=[segment for offset, part in parts for segment in shifted(part, offset)],
    )
