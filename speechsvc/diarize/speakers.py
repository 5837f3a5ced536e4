"""Who speaks when on one channel: speech regions (Silero VAD), a speaker embedding (CAM++) every 0.8 s of
speech, clustering into speakers, labelled spans on the channel's timeline, and (with the segmentation
model) the turns' edges where that model hears them (boundaries.py)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from speechsvc.asr.pieces import speech_regions
from speechsvc.diarize.boundaries import ClipEmbedder, refined
from speechsvc.diarize.campplus import HOP, SAMPLE_RATE_HZ, WINDOW_FRAMES, CamPlusEncoder
from speechsvc.diarize.chunks import window_speakers
from speechsvc.diarize.clustering import SpeakerCount, centroids_of, compact
from speechsvc.diarize.encoder import NORM_TARGET_DBFS
from speechsvc.diarize.segmentation import Segmentation, Segmenter, segment

MIN_SILENCE_MS = 250  # speech regions are cut at pauses this long: a turn change often has no longer one
# Silero's speech probability a frame needs here (the library's default is 0.5). Speech the VAD misses gets
# no speaker of its own (a word there takes the nearest one's): at 0.5 it missed 6.2 % of the tuning part's
# solo speech time (quiet, far-field AMI speech), at 0.3 4.4 %. Chosen on the tuning part only (0.25, 0.3,
# 0.35, 0.4, 0.5 tried; with clustering.py's SHORT_RATIO): see clustering.py.
SPEECH_THRESHOLD = 0.3
WINDOW_STEP_FRAMES = 80  # an embedding every 0.8 s of speech (windows of 1.6 s overlap by half)
BLOCK_SAMPLES = 600 * SAMPLE_RATE_HZ  # speech is embedded in blocks this long: memory stays bounded
# the segmentation model's 10 s chunks start this far apart: one after the other (tuning part: chunks every 5 s
# or 2.5 s, overlapping, read no better, at two and four times the cost)
SEGMENT_STEP_S = 10.0


class SpeakerModel(Protocol):
    """What a speaker model gives: frames every HOP samples of 16 kHz audio, and an L2-normed embedding per
    window of WINDOW_FRAMES of them (campplus.CamPlusEncoder, the service's; encoder.VoiceEncoder, GE2E)."""

    def mel(self, wav: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]: ...

    def embed_frames(self, mel: npt.NDArray[np.float32], starts: list[int]) -> npt.NDArray[np.float32]: ...


@dataclass(frozen=True)
class Span:
    """A stretch of one speaker's speech on the channel's timeline (seconds); speaker is 0-based."""

    start: float
    end: float
    speaker: int


@dataclass(frozen=True)
class SpeechEmbeddings:
    """One channel's speech as the speaker model saw it: an embedding per window, whether each window lies
    inside one stretch of speech, and for each block of speech the channel sample of every mel frame and
    the window that labels it. Clustering these is cheap; computing them is the speaker model's work."""

    embeddings: npt.NDArray[np.float32]
    pure: npt.NDArray[np.bool_]
    stretch: npt.NDArray[np.int64]  # the stretch of speech (between pauses) each window starts in
    frames: tuple[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], int], ...]  # positions, window, offset


def speaker_spans(
    encoder: CamPlusEncoder,
    audio: npt.NDArray[np.float32],
    count: SpeakerCount,
    should_stop: Callable[[], bool] = lambda: False,
    segmenter: Segmenter | None = None,
) -> list[Span]:
    """Labelled speech of one 16 kHz channel, in time order, speakers numbered by first appearance (none
    when should_stop() said so between two blocks of speech or of chunks). With a segmenter, the turns'
    edges are the segmentation model's (boundaries.py)."""
    speech = embed_speech(encoder, audio, should_stop)
    if speech is None:
        return []
    if segmenter is None:
        return label_spans(speech, count)
    found = segment(segmenter, audio, SEGMENT_STEP_S, should_stop)
    return [] if found is None else edged_spans(encoder, audio, speech, count, found)


def edged_spans(
    encoder: ClipEmbedder,
    audio: npt.NDArray[np.float32],
    speech: SpeechEmbeddings,
    count: SpeakerCount,
    segmentation: Segmentation,
) -> list[Span]:
    """The embedded speech clustered into speakers, as labelled spans with the segmentation model's turn
    edges (boundaries.py), unless those lose a speaker the count asked for (kept_count)."""
    labels = window_labels(speech, count)
    spans = spans_of_labels(speech, labels)
    return kept_count(spans, _refined_spans(encoder, audio, speech, labels, spans, segmentation), count)


def kept_count(spans: list[Span], refined: list[Span], count: SpeakerCount) -> list[Span]:
    """The refined spans, unless a speaker the request's count asked for is gone from them (every piece of
    theirs went to another): then the spans as they were."""
    least = count.exact if count.exact is not None else count.low
    speakers = len({span.speaker for span in refined})
    return spans if speakers < min(least, len({span.speaker for span in spans})) else refined


def _refined_spans(
    encoder: ClipEmbedder,
    audio: npt.NDArray[np.float32],
    speech: SpeechEmbeddings,
    labels: npt.NDArray[np.int64],
    spans: list[Span],
    segmentation: Segmentation,
) -> list[Span]:
    """The labelled spans with the segmentation model's turn edges (boundaries.py), speakers numbered again
    by first appearance (a speaker whose every piece went to another is gone)."""
    smooth = _smooth(labels)
    centroids = centroids_of(speech.embeddings[speech.pure], smooth[speech.pure], clusters=np.arange(
        int(labels.max()) + 1 if len(labels) else 0))  # fmt: skip
    pieces = refined(encoder, audio, spans, centroids, segmentation)
    order = compact(np.array([speaker for _, _, speaker in pieces], np.int64))
    return [Span(start, end, int(n)) for (start, end, _), n in zip(pieces, order.tolist(), strict=True)]


def embed_speech(
    encoder: SpeakerModel, audio: npt.NDArray[np.float32], should_stop: Callable[[], bool] = lambda: False
) -> SpeechEmbeddings | None:
    """The speaker model over one 16 kHz channel's speech (None without speech, or when should_stop() said
    so between two blocks of speech)."""
    regions = speech_regions(audio, min_silence_ms=MIN_SILENCE_MS, threshold=SPEECH_THRESHOLD)
    if not regions:
        return None
    gain = _gain(audio, regions)
    embeddings: list[npt.NDArray[np.float32]] = []
    pure: list[npt.NDArray[np.bool_]] = []
    stretch: list[npt.NDArray[np.int64]] = []
    frames: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], int]] = []
    blocks = _blocks(regions)
    for number, block in enumerate(blocks):
        if should_stop():
            return None
        speech = (
            np.concatenate([np.asarray(audio[start:end], dtype=np.float32) for start, end in block]) * gain
        )
        mel = encoder.mel(speech)
        starts = _window_starts(block, len(mel))
        window_of_frame, within, region_of_window = _frame_windows(block, starts, len(mel))
        frames.append((_positions(block, len(mel)), window_of_frame, sum(len(e) for e in embeddings)))
        embeddings.append(encoder.embed_frames(mel, starts))
        pure.append(within)
        stretch.append(region_of_window + sum(len(b) for b in blocks[:number]))
    return SpeechEmbeddings(
        np.concatenate(embeddings), np.concatenate(pure), np.concatenate(stretch), tuple(frames)
    )


def label_spans(speech: SpeechEmbeddings, count: SpeakerCount) -> list[Span]:
    """The embedded speech clustered into speakers, as labelled spans in time order."""
    return spans_of_labels(speech, window_labels(speech, count))


def window_labels(speech: SpeechEmbeddings, count: SpeakerCount) -> npt.NDArray[np.int64]:
    """A speaker per window of the embedded speech (chunks.window_speakers)."""
    step_s = WINDOW_STEP_FRAMES * HOP / SAMPLE_RATE_HZ
    return window_speakers(speech.embeddings, speech.pure, speech.stretch, step_s, count)


def spans_of_labels(speech: SpeechEmbeddings, labels: npt.NDArray[np.int64]) -> list[Span]:
    """A speaker per window as labelled spans in time order (a single window unlike both neighbours, which
    agree, takes their speaker)."""
    labels = _smooth(labels)
    spans: list[Span] = []
    for positions, window_of_frame, offset in speech.frames:
        for position, label in zip(
            positions.tolist(), labels[window_of_frame + offset].tolist(), strict=True
        ):
            start, end = position / SAMPLE_RATE_HZ, (position + HOP) / SAMPLE_RATE_HZ
            if spans and spans[-1].speaker == label and start - spans[-1].end < 1e-6:
                spans[-1] = Span(spans[-1].start, end, label)
            else:
                spans.append(Span(start, end, label))
    return [Span(round(s.start, 3), round(s.end, 3), s.speaker) for s in spans]


def _window_starts(block: list[tuple[int, int]], count: int) -> list[int]:
    """Where the windows start (mel frames of the block's concatenated speech): every WINDOW_STEP_FRAMES
    from the start of each stretch of speech, and one ending at its end, so that every stretch long enough
    for a window has windows of its own; a shorter stretch gets one window starting there (running into
    the next stretch)."""
    last = max(0, count - WINDOW_FRAMES)
    edges = np.concatenate([[0], np.cumsum([end - start for start, end in block]) // HOP])
    starts: set[int] = set()
    for first, end in itertools.pairwise(edges.tolist()):
        if end - first >= WINDOW_FRAMES:
            starts.update(range(first, end - WINDOW_FRAMES + 1, WINDOW_STEP_FRAMES))
            starts.add(end - WINDOW_FRAMES)
        else:
            starts.add(min(first, last))
    return sorted(starts)


def _frame_windows(
    block: list[tuple[int, int]], starts: list[int], count: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """For each mel frame, the window that labels it, and for each window whether it lies inside one speech
    region (no pause inside, so most likely one voice). A frame takes the nearest such window of its own
    region, so that a turn ends where the pause is; a region too short for a window of its own takes the
    nearest window of any kind. And for each window, the region it starts in."""
    joins = np.cumsum([end - start for start, end in block])[:-1] // HOP  # region boundaries, in mel frames
    first = np.array(starts, dtype=np.int64)
    centres = first + min(WINDOW_FRAMES, count) // 2
    region_of_window = np.searchsorted(joins, first, side="right")
    within = region_of_window == np.searchsorted(joins, first + min(WINDOW_FRAMES, count) - 1, side="right")
    frame = np.arange(count)
    region_of_frame = np.searchsorted(joins, frame, side="right")
    window_of_frame = _nearest(centres, frame)
    for region in np.unique(region_of_frame).tolist():
        own = np.flatnonzero(within & (region_of_window == region))
        if len(own):
            mine = region_of_frame == region
            window_of_frame[mine] = own[_nearest(centres[own], frame[mine])]
    return window_of_frame, within, region_of_window


def _gain(audio: npt.NDArray[np.float32], regions: list[tuple[int, int]]) -> np.float32:
    """resemblyzer's volume normalisation over the whole channel's speech: raised to -30 dBFS, never
    lowered (GE2E's mel is not logarithmic, so the level matters to it; CAM++'s log filterbanks, mean
    normalised, do not mind)."""
    energy = sum(float(np.sum(np.square(np.asarray(audio[s:e], dtype=np.float64)))) for s, e in regions)
    samples = sum(e - s for s, e in regions)
    if energy <= 0.0:
        return np.float32(1.0)
    change_db = NORM_TARGET_DBFS - 10 * np.log10(energy / samples)
    return np.float32(1.0 if change_db < 0 else 10 ** (change_db / 20))


def _blocks(regions: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    blocks: list[list[tuple[int, int]]] = [[]]
    size = 0
    for start, end in regions:
        for cut in range(start, end, BLOCK_SAMPLES):  # a region longer than a block is cut
            piece = (cut, min(end, cut + BLOCK_SAMPLES))
            if size + piece[1] - piece[0] > BLOCK_SAMPLES and blocks[-1]:
                blocks.append([])
                size = 0
            blocks[-1].append(piece)
            size += piece[1] - piece[0]
    return blocks


def _positions(block: list[tuple[int, int]], count: int) -> npt.NDArray[np.int64]:
    """The channel sample at which each mel frame of the block's concatenated speech starts."""
    lengths = np.array([end - start for start, end in block])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    inner = np.minimum(np.arange(count) * HOP, offsets[-1] - 1)
    region = np.searchsorted(offsets, inner, side="right") - 1
    starts = np.array([block[r][0] for r in region.tolist()], dtype=np.int64)
    positions: npt.NDArray[np.int64] = starts + inner - offsets[region]
    return positions


def _nearest(centres: npt.NDArray[np.int64], frames: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    right = np.clip(np.searchsorted(centres, frames), 0, len(centres) - 1)
    left = np.clip(right - 1, 0, len(centres) - 1)
    nearest: npt.NDArray[np.int64] = np.where(
        np.abs(centres[left] - frames) <= np.abs(centres[right] - frames), left, right
    )
    return nearest


def _smooth(labels: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """A single window unlike both neighbours, which agree, takes their speaker (one 0.4 s blip)."""
    out = labels.copy()
    for i in range(1, len(labels) - 1):
        if labels[i - 1] == labels[i + 1] != labels[i]:
            out[i] = labels[i - 1]
    return out
