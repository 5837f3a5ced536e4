"""Where turns begin and end, from the segmentation model (segmentation.py), on spans the speaker model has
labelled (speakers.py).

The labelled spans change speaker where a 1.6 s window's speaker changes: a short turn inside a stretch of
speech with no pause (no pause is where most of the tuning part's wrong speech time lies: 74 % of it within
1.2 s of a turn change) is absorbed by the windows around it. The segmentation model sees such a change to
within a frame. So each span is cut where the model hears one voice give way to another, and each piece
between two cuts of MIN_PIECE_S or more is embedded on its own and goes to the nearest speaker; spans with
no change inside keep their labels. Then speech the model hears and Silero did not (quiet speech at the
edges of a turn) joins the span beside it: a gap between two spans half to each.

Chosen on the tuning part only (benchmarks/bench_diarize.py --part tune): see the README's diarization
section for what each step gave there and on the report part.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from speechsvc.diarize.segmentation import SAMPLE_RATE_HZ, Segmentation

MIN_PIECE_S = 0.3  # a shorter piece keeps its span's speaker (one embedding of 0.3 s is still a vote)
EDGE_S = 0.05  # a change this close to a span's end is the span's end


class Span(Protocol):
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def speaker(self) -> int: ...


class ClipEmbedder(Protocol):
    """A speaker model that embeds a clip of any length (campplus.CamPlusEncoder.embed_clip)."""

    def embed_clip(self, wav: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]: ...


Piece = tuple[float, float, int]  # start, end (s), speaker


def refined(
    encoder: ClipEmbedder,
    audio: npt.NDArray[np.float32],
    spans: Sequence[Span],
    centroids: npt.NDArray[np.float32],
    segmentation: Segmentation,
) -> list[Piece]:
    """The spans cut at the model's changes, each piece between two cuts labelled on its own (the nearest
    of `centroids`, a row per speaker), and widened over the speech the model hears beside them; in time
    order, touching pieces of one speaker joined."""
    pieces: list[Piece] = []
    changes = np.array(segmentation.changes if len(centroids) > 1 else [])  # one speaker: nothing to cut
    for span in spans:
        low, high = np.searchsorted(changes, [span.start + EDGE_S, span.end - EDGE_S], side="right")
        inside = [c for c in changes[low:high].tolist() if span.start + EDGE_S < c < span.end - EDGE_S]
        if not inside:
            pieces.append((span.start, span.end, span.speaker))
            continue
        edges = [span.start, *inside, span.end]
        for start, end in itertools.pairwise(edges):
            speaker = span.speaker
            if end - start >= MIN_PIECE_S:
                clip = audio[int(start * SAMPLE_RATE_HZ) : int(end * SAMPLE_RATE_HZ)]
                speaker = int(np.argmax(centroids @ encoder.embed_clip(np.asarray(clip, np.float32))))
            pieces.append((start, end, speaker))
    return _joined(_widened(pieces, segmentation.speech))


def _widened(pieces: list[Piece], heard: list[tuple[int, int]]) -> list[Piece]:
    """Each stretch the model hears speech in that some piece lies in: the time no piece covers there goes
    to the piece it touches (between two, half to each)."""
    out = list(pieces)
    starts, ends = np.array([p[0] for p in pieces]), np.array([p[1] for p in pieces])  # in time order
    for first, last in heard:
        low, high = first / SAMPLE_RATE_HZ, last / SAMPLE_RATE_HZ
        inside = pieces[np.searchsorted(ends, low, side="right") : np.searchsorted(starts, high, side="left")]
        if not inside:
            continue
        at = low
        before: Piece | None = None
        for piece in inside:
            if piece[0] > at:  # a gap from `at` to this piece
                if before is None:
                    out.append((at, piece[0], piece[2]))
                else:
                    middle = (at + piece[0]) / 2
                    out += [(at, middle, before[2]), (middle, piece[0], piece[2])]
            if piece[1] > at:
                at, before = piece[1], piece
        if before is not None and at < high:
            out.append((at, high, before[2]))
    return sorted(out)


def _joined(pieces: list[Piece]) -> list[Piece]:
    out: list[Piece] = []
    for start, end, speaker in pieces:
        if out and out[-1][2] == speaker and start - out[-1][1] < 1e-6:
            out[-1] = (out[-1][0], max(out[-1][1], end), speaker)
        else:
            out.append((start, end, speaker))
    return [(round(start, 3), round(end, 3), speaker) for start, end, speaker in out]
