"""A count rule that rests on no tuned distance, for comparison with the service's: spectral clustering's
eigengap with the pruning auto-tuned per call (NME-SC: Park et al., "Auto-Tuning Spectral Clustering for
Speaker Diarization Using Normalized Maximum Eigengap", IEEE SPL 2019).

For each p from 2 to a quarter of the windows: keep each window's p most similar windows (cosine) as 1s,
symmetrise, take the graph Laplacian's eigenvalues; the count is where the largest gap between consecutive
eigenvalues falls, and the p kept is the one with the smallest p / n / (largest gap / largest eigenvalue)
(a clear gap with little pruning). The windows are then split into that many speakers as the service
splits them for a given count. Measured on the tuning part it lost to the service's rule (README), so it
lives here, not in speechsvc/diarize/.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from diarize_silhouette import MIN_SPEAKER_WINDOWS, PURE_SHARE

from speechsvc.diarize.clustering import SpeakerCount
from speechsvc.diarize.speakers import SpeechEmbeddings

MAX_PRUNE_SHARE = 0.25  # p up to this share of the windows (the paper's range)
MIN_WINDOWS = 4  # fewer: the service's rule


def eigengap_count(embeddings: npt.NDArray[np.float32], low: int, high: int) -> int:
    """The NME-SC estimate of the number of speakers among L2-normed embeddings, within low..high."""
    n = len(embeddings)
    similarity = embeddings @ embeddings.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = np.argsort(-similarity, axis=1)
    best_ratio, best_k = np.inf, 1
    for p in range(2, min(max(2, int(MAX_PRUNE_SHARE * n)), n - 1) + 1):
        affinity = np.zeros((n, n))
        affinity[np.repeat(np.arange(n), p), nearest[:, :p].ravel()] = 1.0
        affinity = (affinity + affinity.T) / 2
        eigenvalues = np.linalg.eigvalsh(np.diag(affinity.sum(axis=1)) - affinity)
        gaps = np.diff(eigenvalues[: min(high, n - 1) + 1])[max(low, 1) - 1 :]  # gaps[i]: count low + i
        if not len(gaps):
            continue
        ratio = p / n / (gaps.max() / max(eigenvalues[-1], 1e-9) + 1e-9)
        if ratio < best_ratio:
            best_ratio, best_k = ratio, int(np.argmax(gaps)) + max(low, 1)
    return best_k


def eigengap_speakers(speech: SpeechEmbeddings, count: SpeakerCount) -> SpeakerCount:
    """The count the eigengap rule gives for a call's windows (those inside one stretch of speech when there
    are enough of them, as the service clusters them), as an exact count; the request's own count when it
    is exact or the windows are too few."""
    pure = speech.embeddings[speech.pure]
    windows = (
        pure
        if len(pure) >= max(MIN_SPEAKER_WINDOWS, PURE_SHARE * len(speech.embeddings))
        else speech.embeddings
    )
    if count.exact is not None or len(windows) < MIN_WINDOWS:
        return count
    k = eigengap_count(windows, count.low, min(count.high, len(windows) // MIN_SPEAKER_WINDOWS))
    return SpeakerCount(exact=k, low=k, high=k)
