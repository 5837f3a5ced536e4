"""Measures for the diarization benchmark: speech time on the right speaker, DER with a collar, what
overlapped speech gets, and the equal-error rate of a speaker model. Frames of 10 ms; the found speakers
are mapped one-to-one onto the true ones so as to put the most time right (Hungarian assignment).

DER here is NIST's: (missed speech + false alarm + speaker confusion) / reference speech, with nothing
counted within `collar_s` of a true turn's start or end, and overlapped speech counted once per speaker
(a frame where two speak and one is found is one error of two). Written here because pyannote.metrics
needs pyannote.core, pandas and matplotlib; it follows md-eval's definitions on frames.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from speechsvc.diarize.speakers import Span

FRAME_S = 0.01
Turn = tuple[float, float, str]


def _truth_sets(turns: tuple[Turn, ...], count: int) -> list[set[str]]:
    frames: list[set[str]] = [set() for _ in range(count)]
    for start, end, speaker in turns:
        for frame in range(round(start / FRAME_S), min(count, round(end / FRAME_S))):
            frames[frame].add(speaker)
    return frames


def _found(spans: list[Span], count: int) -> list[int | None]:
    frames: list[int | None] = [None] * count
    for span in spans:
        for frame in range(round(span.start / FRAME_S), min(count, round(span.end / FRAME_S))):
            frames[frame] = span.speaker
    return frames


def _mapping(truth: list[set[str]], found: list[int | None]) -> dict[int, str]:
    from scipy.optimize import linear_sum_assignment

    true_names = sorted({t for ts in truth for t in ts})
    found_names = sorted({f for f in found if f is not None})
    overlap = np.zeros((len(found_names), len(true_names)))
    for ts, f in zip(truth, found, strict=True):
        if f is not None:
            for t in ts:
                overlap[found_names.index(f), true_names.index(t)] += 1
    rows, cols = linear_sum_assignment(-overlap)
    return {found_names[r]: true_names[c] for r, c in zip(rows, cols, strict=True)}


def score(turns: tuple[Turn, ...], duration_s: float, spans: list[Span],
          collar_s: float = 0.25) -> dict[str, float]:  # fmt: skip
    """right: share of the speech time of one speaker alone labelled with that speaker; missed: the share
    of it with no speaker at all (the VAD heard no speech there); right_heard: right among the rest;
    right_words: right with that unheard speech on the nearest span's speaker, as a word the decoder
    writes there is labelled (speechsvc.diarize.assign.speaker_at: what a reader of the transcript sees); der:
    DER with the collar; overlap_one_of: share of overlapped speech time labelled with one of the speakers
    there (nan without overlap); found: how many speakers were found."""
    count = int(np.ceil(duration_s / FRAME_S)) + 1
    truth, found = _truth_sets(turns, count), _found(spans, count)
    mapping = _mapping(truth, found)
    named = [mapping.get(f) if f is not None else None for f in found]
    alone = [i for i, ts in enumerate(truth) if len(ts) == 1]
    right = sum(1 for i in alone if named[i] in truth[i]) / max(1, len(alone))
    heard = [i for i in alone if found[i] is not None]
    overlapped = [i for i, ts in enumerate(truth) if len(ts) > 1]
    one_of = sum(1 for i in overlapped if named[i] in truth[i]) / len(overlapped) if overlapped else np.nan
    scored = np.ones(count, bool)
    collar = round(collar_s / FRAME_S)
    for start, end, _ in turns:
        for edge in (round(start / FRAME_S), round(end / FRAME_S)):
            scored[max(0, edge - collar) : edge + collar] = False
    reference = errors = 0
    for i in np.flatnonzero(scored).tolist():
        ts, f = truth[i], named[i]
        reference += len(ts)
        if ts:
            errors += len(ts) - (1 if f in ts else 0)  # missed or confused: every true speaker not found
        elif found[i] is not None:
            errors += 1  # false alarm
    nearest = _nearest_found(found)
    return {"right": right, "der": errors / max(1, reference), "overlap_one_of": one_of,
            "missed": 1 - len(heard) / max(1, len(alone)),
            "right_words": sum(1 for i in alone if mapping.get(nearest[i], None) in truth[i]) / max(1, len(alone)),
            "right_heard": sum(1 for i in heard if named[i] in truth[i]) / max(1, len(heard)),
            "found": float(len({s.speaker for s in spans}))}  # fmt: skip


def _nearest_found(found: list[int | None]) -> list[int | None]:
    """Each frame's speaker, a frame without one taking the nearest frame's that has one (the earlier on a
    tie)."""
    labelled = np.flatnonzero([f is not None for f in found])
    if not len(labelled):
        return found
    right = np.clip(np.searchsorted(labelled, np.arange(len(found))), 0, len(labelled) - 1)
    left = np.clip(right - 1, 0, len(labelled) - 1)
    frames = np.arange(len(found))
    pick = np.where(
        np.abs(labelled[left] - frames) <= np.abs(labelled[right] - frames), labelled[left], labelled[right]
    )
    return [found[i] for i in pick.tolist()]


def equal_error_rate(embeddings: npt.NDArray[np.float32], speakers: list[str],
                     groups: list[int]) -> float:  # fmt: skip
    """EER of cosine scores over all pairs of L2-normed embeddings from different groups (pieces of audio:
    two windows of one piece overlap and say little), same speaker against different speakers."""
    similarity = embeddings @ embeddings.T
    names, group = np.array(speakers), np.array(groups)
    upper = np.triu(np.ones_like(similarity, dtype=bool), 1) & (group[:, None] != group[None, :])
    same = (names[:, None] == names[None, :]) & upper
    target, other = similarity[same], similarity[upper & ~same]
    thresholds = np.sort(np.concatenate([target, other]))
    miss = np.searchsorted(np.sort(target), thresholds, side="left") / len(target)
    false_accept = 1 - np.searchsorted(np.sort(other), thresholds, side="left") / len(other)
    at = int(np.argmin(np.abs(miss - false_accept)))
    return float((miss[at] + false_accept[at]) / 2)
