"""Windows into chunks of about 3 s of one voice, the units the speakers are found on.

One 1.6 s window is a weaker sample of a voice than the mean of a few (equal-error rate on the report
speakers' solo pieces of 3.2 s or more, benchmarks/bench_diarize.py: CAM++ 0.028 for one window, 0.002 for
the mean of the three windows of 3.2 s; GE2E, the model before, 0.154 and 0.111). So the windows inside each
stretch of speech (between pauses) are cut into runs of MIN_CHUNK_WINDOWS to twice that, each time where
the mean of the windows before and the mean of those after differ most: a stretch that holds two voices
(turns with no pause between them) is cut where the voice changes, not averaged across it. Each run's
mean is one chunk, weighted by the speech it stands for. Windows across a pause belong to no chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from speechsvc.diarize.clustering import (
    Embeddings,
    Labels,
    SpeakerCount,
    centroids_of,
    cluster,
    compact,
    unit_rows,
)

MIN_CHUNK_WINDOWS = 2  # a run is cut in two only while both halves keep this many windows (chunks of 2-3)


@dataclass(frozen=True)
class Chunks:
    """Chunks of one channel's windows: a mean embedding each, the seconds of speech it stands for (a
    window per step), and for each window its chunk (-1 for a window across a pause)."""

    embeddings: Embeddings
    seconds: npt.NDArray[np.float64]
    of_window: Labels


def chunk_windows(
    embeddings: Embeddings, pure: npt.NDArray[np.bool_], stretch: Labels, step_s: float
) -> Chunks:
    """The windows inside one stretch (`pure`; `stretch` numbers the stretches) cut into chunks; `step_s`
    is the speech between two windows' starts."""
    of_window = np.full(len(embeddings), -1, np.int64)
    means: list[Embeddings] = []
    sizes: list[int] = []
    for number in np.unique(stretch[pure]).tolist():
        for run in _cut(embeddings, np.flatnonzero(pure & (stretch == number))):
            of_window[run] = len(means)
            means.append(embeddings[run].sum(axis=0))
            sizes.append(len(run))
    if not means:
        return Chunks(np.zeros((0, embeddings.shape[1]), np.float32), np.zeros(0), of_window)
    return Chunks(unit_rows(np.stack(means)), np.array(sizes, np.float64) * step_s, of_window)


def _cut(embeddings: Embeddings, run: Labels) -> list[Labels]:
    """The run (window indices in time order) cut recursively where the voice changes most."""
    if len(run) < 2 * MIN_CHUNK_WINDOWS:
        return [run]
    before = np.cumsum(embeddings[run], axis=0)[:-1]  # sums of the first 1, 2, … windows
    after = before[-1] + embeddings[run[-1]] - before
    cuts = np.arange(MIN_CHUNK_WINDOWS, len(run) - MIN_CHUNK_WINDOWS + 1)
    similarity = np.sum(unit_rows(before[cuts - 1]) * unit_rows(after[cuts - 1]), axis=1)
    at = int(cuts[np.argmin(similarity)])
    return _cut(embeddings, run[:at]) + _cut(embeddings, run[at:])


def window_speakers(
    embeddings: Embeddings, pure: npt.NDArray[np.bool_], stretch: Labels, step_s: float, count: SpeakerCount
) -> Labels:
    """A speaker per window: the chunks clustered into speakers, then every window to the nearest speaker's
    centroid (so a window across a turn change goes to the voice it holds more of). With fewer than two
    chunks (little speech inside stretches), each window is a chunk of its own."""
    chunks = chunk_windows(embeddings, pure, stretch, step_s)
    if len(chunks.embeddings) < 2:
        everyone = np.arange(len(embeddings), dtype=np.int64)
        chunks = Chunks(embeddings, np.full(len(embeddings), step_s), everyone)
    labels = cluster(chunks.embeddings, chunks.seconds, count)
    if len(labels) == 0 or labels.max() == 0:
        return np.zeros(len(embeddings), np.int64)
    inside = chunks.of_window >= 0
    centroids = centroids_of(embeddings[inside], labels[chunks.of_window[inside]])
    return compact(np.argmax(embeddings @ centroids.T, axis=1))
