"""Speaker embeddings into speakers: average-linkage clustering on cosine distance, cut into k clusters and
refined by moving each window to its nearest centroid. With an exact count, k is that count. Otherwise k
is the largest count within the bounds whose speakers are all distinct (their centroids at least
DISTINCT_DISTANCE apart) and all big enough to be a person (not a cough, not the windows across turns).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# Cosine distance between two speakers' centroids of 1.6 s GE2E windows. Measured on calls mixed from the
# corpus voices and generated ones (tests/diarize_calls.py): two people 0.26-0.49 apart; one person (the noisy
# JFK recording) split in two halves 0.19-0.20 apart, or into a big and a small part up to 0.28 apart. So
# the line sits at 0.23, and a small speaker (under twice MIN_SPEAKER_WINDOWS) must stand at 0.30.
DISTINCT_DISTANCE = 0.23
MIN_SPEAKER_SHARE = 0.10  # an estimated speaker holds at least this share of the windows …
MIN_SPEAKER_WINDOWS = 6  # … and at least this many (about 5 s of speech, at a window every 0.8 s)
SMALL_SPEAKER_DISTANCE = 0.30  # a speaker with under twice that many windows must stand further apart
REFINE_ROUNDS = 5
PURE_SHARE = 0.5  # cluster on the windows inside one stretch of speech when they are at least this share
DEFAULT_MAX_SPEAKERS = 8  # API.md §1: estimated, 1-8 by default

Embeddings = npt.NDArray[np.float32]
Labels = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SpeakerCount:
    """What the request said about the number of speakers: exact, or bounds for the estimate."""

    exact: int | None = None
    low: int = 1
    high: int = DEFAULT_MAX_SPEAKERS


def cluster(embeddings: Embeddings, count: SpeakerCount) -> Labels:
    """A speaker index per embedding (L2-normed rows), 0..k-1 in order of first appearance."""
    n = len(embeddings)
    low, high = (count.exact, count.exact) if count.exact is not None else (count.low, count.high)
    if n == 0:
        return np.zeros(0, np.int64)
    if n == 1 or high == 1:
        return np.zeros(n, np.int64)
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(embeddings.astype(np.float64), method="average", metric="cosine")
    for k in range(min(high, n), max(1, low) - 1, -1):
        labels = _refine(embeddings, fcluster(tree, t=k, criterion="maxclust") - 1)
        if k == max(1, low) or _distinct(embeddings, labels, k):
            return labels
    return np.zeros(n, np.int64)  # not reached: the loop ends at k == low


def cluster_pure(embeddings: Embeddings, pure: npt.NDArray[np.bool_], count: SpeakerCount) -> Labels:
    """`cluster` on the windows of one voice only (`pure`: inside one stretch of speech, not across a pause
    where the speaker may change), when there are enough of them; the others then go to the nearest speaker.
    A window across a turn holds two voices, and a few of them made a speaker of their own."""
    if pure.sum() < max(MIN_SPEAKER_WINDOWS, PURE_SHARE * len(embeddings)):
        return cluster(embeddings, count)
    labels = cluster(embeddings[pure], count)
    nearest = np.argmax(embeddings @ _centroids(embeddings[pure], labels).T, axis=1)
    nearest[pure] = labels
    return _compact(nearest)


def _distinct(embeddings: Embeddings, labels: Labels, k: int) -> bool:
    sizes = np.bincount(labels)
    if len(sizes) != k or sizes.min() < max(MIN_SPEAKER_WINDOWS, MIN_SPEAKER_SHARE * len(labels)):
        return False
    centroids = _centroids(embeddings, labels)
    distance = 1.0 - centroids @ centroids.T
    np.fill_diagonal(distance, np.inf)
    needed = np.where(sizes < 2 * MIN_SPEAKER_WINDOWS, SMALL_SPEAKER_DISTANCE, DISTINCT_DISTANCE)
    return bool(np.all(distance.min(axis=1) >= needed))


def _centroids(embeddings: Embeddings, labels: Labels) -> Embeddings:
    sums = np.stack([embeddings[labels == k].sum(axis=0) for k in range(int(labels.max()) + 1)])
    centroids: Embeddings = (sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-9)).astype(
        np.float32
    )
    return centroids


def _refine(embeddings: Embeddings, labels: Labels) -> Labels:
    """Each window to its nearest centroid, a few rounds (a cluster left empty disappears)."""
    labels = _compact(labels)
    for _ in range(REFINE_ROUNDS):
        moved = _compact(np.argmax(embeddings @ _centroids(embeddings, labels).T, axis=1))
        if np.array_equal(moved, labels):
            break
        labels = moved
    return labels


def _compact(labels: Labels) -> Labels:
    """Labels renumbered 0..k-1 in order of first appearance."""
    order: dict[int, int] = {}
    for label in labels.tolist():
        order.setdefault(label, len(order))
    return np.array([order[label] for label in labels.tolist()], dtype=np.int64)
