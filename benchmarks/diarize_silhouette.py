"""The count rule before chunks (round 2 of issue 24), kept for comparison: 1.6 s windows clustered
directly (average linkage on cosine distance), and the count the k whose partition into speakers of at
least two windows has the best silhouette among those whose two nearest speakers stand 0.22 apart; windows
across a pause left out of the clustering and given the nearest speaker. On the tuning part the chunks'
rule (speechsvc/diarize/clustering.py) put more speech time on the right speaker (README), so this one
lives here, not in speechsvc/diarize/.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from speechsvc.diarize.clustering import SpeakerCount, centroids_of, compact, refine
from speechsvc.diarize.speakers import SpeechEmbeddings

DISTINCT_DISTANCE = 0.22
MIN_SPEAKER_WINDOWS = 2
PURE_SHARE = 0.5  # cluster on the windows inside one stretch of speech when they are at least this share

Embeddings = npt.NDArray[np.float32]
Labels = npt.NDArray[np.int64]


def silhouette_labels(speech: SpeechEmbeddings, count: SpeakerCount) -> Labels:
    """A speaker per window by the round-2 rule."""
    return cluster_pure(speech.embeddings, speech.pure, count)


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
    if low == high:
        return _refine(embeddings, fcluster(tree, t=min(high, n), criterion="maxclust") - 1)
    best, best_score = np.zeros(n, np.int64), -np.inf
    distance = 1.0 - embeddings @ embeddings.T  # once, for every k's silhouette
    for k in range(max(2, low), min(high, n // MIN_SPEAKER_WINDOWS) + 1):
        labels = partition(embeddings, tree, k)
        if labels is None or (low <= 1 and _nearest_distance(embeddings, labels) < DISTINCT_DISTANCE):
            continue
        score = silhouette(embeddings, labels, distance)
        if score > best_score:
            best, best_score = labels, score
    if best_score == -np.inf and low >= 2:  # bounds above what the windows allow: the nearest that holds
        return _refine(embeddings, fcluster(tree, t=min(low, n), criterion="maxclust") - 1)
    return best


def _nearest_distance(embeddings: Embeddings, labels: Labels) -> float:
    centroids = centroids_of(embeddings, labels)
    distance = 1.0 - centroids @ centroids.T
    np.fill_diagonal(distance, np.inf)
    return float(distance.min())


def partition(embeddings: Embeddings, tree: npt.NDArray[np.float64], k: int) -> Labels | None:
    """k speakers of at least MIN_SPEAKER_WINDOWS each: the tree cut where it first has k clusters that
    big, the smaller ones (a cough, a window across two voices) moved to the nearest of them, refined;
    None when no cut has k such clusters."""
    from scipy.cluster.hierarchy import fcluster

    for t in range(k, len(embeddings) + 1):
        labels = fcluster(tree, t=t, criterion="maxclust") - 1
        sizes = np.bincount(labels)
        big = np.flatnonzero(sizes >= MIN_SPEAKER_WINDOWS)
        if len(big) > k:
            return None
        if len(big) == k:
            centroids = centroids_of(embeddings, labels, clusters=big)
            moved = big[np.argmax(embeddings @ centroids.T, axis=1)]
            labels = np.where(np.isin(labels, big), labels, moved)
            refined = _refine(embeddings, labels)
            if refined.max() + 1 == k and np.bincount(refined).min() >= MIN_SPEAKER_WINDOWS:
                return refined
            return None
    return None


def silhouette(embeddings: Embeddings, labels: Labels, distance: Embeddings | None = None) -> float:
    """The mean silhouette of a clustering on cosine distance: for each window, how much nearer it is to its
    own speaker's other windows than to the nearest other speaker's (-1..1)."""
    if distance is None:
        distance = 1.0 - embeddings @ embeddings.T
    k = int(labels.max()) + 1
    members = np.eye(k, dtype=np.float32)[labels]  # (n, k) one-hot
    sizes = members.sum(axis=0)
    mean_to = (distance @ members) / np.maximum(sizes, 1)  # mean distance of each window to each speaker
    own_size = sizes[labels]
    own = mean_to[np.arange(len(labels)), labels] * own_size / np.maximum(own_size - 1, 1)
    mean_to[np.arange(len(labels)), labels] = np.inf
    other = mean_to.min(axis=1)
    scores = np.where(own_size > 1, (other - own) / np.maximum(np.maximum(other, own), 1e-9), 0.0)
    return float(scores.mean())


def cluster_pure(embeddings: Embeddings, pure: npt.NDArray[np.bool_], count: SpeakerCount) -> Labels:
    """`cluster` on the windows of one voice only (`pure`: inside one stretch of speech, not across a pause
    where the speaker may change), when there are enough of them; the others then go to the nearest speaker.
    A window across a turn holds two voices, and a few of them made a speaker of their own."""
    if pure.sum() < max(MIN_SPEAKER_WINDOWS, PURE_SHARE * len(embeddings)):
        return cluster(embeddings, count)
    labels = cluster(embeddings[pure], count)
    nearest = np.argmax(embeddings @ centroids_of(embeddings[pure], labels).T, axis=1)
    nearest[pure] = labels
    return compact(nearest)


def _refine(embeddings: Embeddings, labels: Labels) -> Labels:
    """The service's refinement (clustering.refine), every window standing for the same speech."""
    return refine(embeddings, np.ones(len(embeddings)), labels)
