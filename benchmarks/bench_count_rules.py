"""Count rules over 1.6 s windows for diarization without `num_speakers`, compared on the same calls (issue
24, round 2; the service has since moved to chunks of about 3 s, bench_diarize.py): round 2's (silhouette
among partitions whose nearest speakers stand 0.22 apart, diarize_silhouette.py), NME-SC's eigengap
(diarize_eigengap.py), the `spectralcluster` package's refined affinity with its eigenvalue-ratio count,
and a BIC over the service's partitions. Each rule only picks the count; the speech is then split as the
service splits it for a given count, so the table compares counts, not partitions.

The tuning part by default: a rule is chosen there, and the report part is for the one chosen
(`bench_diarize.py` prints the service's rule and the eigengap there). Embeddings come from the cache that
bench_diarize.py fills (build/diarize-evalset/).

    python benchmarks/bench_count_rules.py [--part tune]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import diarize_evalset as evalset  # noqa: E402
from bench_diarize import cached_embeddings, spans_of  # noqa: E402
from diarize_eigengap import eigengap_count  # noqa: E402
from diarize_scoring import score  # noqa: E402
from diarize_silhouette import MIN_SPEAKER_WINDOWS, PURE_SHARE, cluster, partition  # noqa: E402

from speechsvc.diarize import SpeakerCount, load_encoder  # noqa: E402
from speechsvc.diarize.speakers import SpeechEmbeddings  # noqa: E402

Embeddings = npt.NDArray[np.float32]
Rule = Callable[[Embeddings, int], int]  # windows, most speakers -> count
MIN_WINDOWS = 4  # fewer: every rule leaves the count to the service's


def service(windows: Embeddings, high: int) -> int:
    return int(cluster(windows, SpeakerCount(high=high)).max()) + 1


def eigengap(windows: Embeddings, high: int) -> int:
    return eigengap_count(windows, 1, high)


def refined_ratio(percentile: float) -> Rule:
    """The `spectralcluster` package's default refinement (Wang et al. 2018): cosine affinity in 0..1,
    diagonal set to each row's largest other value, entries under the row's percentile scaled by 0.01,
    symmetrised by the maximum, diffused (A·Aᵀ), each row divided by its maximum; the count is where the
    ratio of consecutive eigenvalues is largest."""

    def rule(windows: Embeddings, high: int) -> int:
        affinity = (1 + windows @ windows.T) / 2
        others = affinity.copy()
        np.fill_diagonal(others, -np.inf)
        np.fill_diagonal(affinity, others.max(axis=1))
        floor = np.percentile(affinity, percentile * 100, axis=1)
        affinity = np.where(affinity >= floor[:, None], affinity, affinity * 0.01)
        affinity = np.maximum(affinity, affinity.T)
        affinity = affinity @ affinity.T
        affinity /= affinity.max(axis=1, keepdims=True)
        eigenvalues = np.sort(np.linalg.eigvalsh(affinity))[::-1]
        top = min(high, len(eigenvalues) - 1)
        ratios = eigenvalues[:top] / np.maximum(eigenvalues[1 : top + 1], 1e-9)
        return int(np.argmax(ratios)) + 1

    return rule


def bic(penalty: float) -> Rule:
    """The service's partition into k speakers for each k, and the k with the lowest BIC of a spherical
    Gaussian per speaker with one shared variance (k·d means and the variance as parameters, weighted by
    `penalty`)."""

    def rule(windows: Embeddings, high: int) -> int:
        from scipy.cluster.hierarchy import linkage

        n, d = windows.shape
        tree = linkage(windows.astype(np.float64), method="average", metric="cosine")
        best_k, best = 1, np.inf
        for k in range(1, high + 1):
            labels = np.zeros(n, np.int64) if k == 1 else partition(windows, tree, k)
            if labels is None:
                continue
            means = np.stack([windows[labels == c].mean(axis=0) for c in range(k)])
            variance = float(((windows - means[labels]) ** 2).sum()) / (n * d)
            value = n * d * np.log(max(variance, 1e-12)) + penalty * (k * d + 1) * np.log(n)
            if value < best:
                best_k, best = k, value
        return best_k

    return rule


RULES: dict[str, Rule] = {
    "silhouette + 0.22 apart (round 2)": service,
    "eigengap, NME-SC (Park et al. 2019)": eigengap,
    "spectralcluster refinement, percentile 0.6": refined_ratio(0.6),
    "spectralcluster refinement, percentile 0.8": refined_ratio(0.8),
    "spectralcluster refinement, percentile 0.95": refined_ratio(0.95),
    "BIC, penalty × 1": bic(1.0),
    "BIC, penalty × 2": bic(2.0),
    "BIC, penalty × 4": bic(4.0),
}


def counted(speech: SpeechEmbeddings | None, rule: Rule) -> SpeakerCount:
    """The rule's count over the windows the service clusters (those inside one stretch of speech when
    there are enough of them), as an exact count."""
    if speech is None:
        return SpeakerCount()
    pure = speech.embeddings[speech.pure]
    enough = len(pure) >= max(MIN_SPEAKER_WINDOWS, PURE_SHARE * len(speech.embeddings))
    windows = pure if enough else speech.embeddings
    if len(windows) < MIN_WINDOWS:
        return SpeakerCount()
    k = rule(windows, max(1, min(SpeakerCount().high, len(windows) // MIN_SPEAKER_WINDOWS)))
    return SpeakerCount(exact=k, low=k, high=k)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=("report", "tune"), default="tune")
    args = parser.parse_args()
    encoder = load_encoder()
    calls = evalset.report_calls() if args.part == "report" else evalset.tune_calls()
    speeches = [cached_embeddings(encoder, call.audio) for call in calls]
    print(f"## Count rules on the {args.part} part ({len(calls)} calls; exact count and share of speech time on "
          "the right speaker, by number of speakers)\n")  # fmt: skip
    sizes = sorted({len(call.names) for call in calls})
    print("| rule | " + " | ".join(f"{n} spk: exact / right" for n in sizes) + " | 2-4 spk: right |")
    print("|---|" + "---|" * (len(sizes) + 1))
    for name, rule in RULES.items():
        results: dict[int, list[dict[str, float]]] = defaultdict(list)
        for call, speech in zip(calls, speeches, strict=True):
            spans = spans_of(speech, counted(speech, rule))
            results[len(call.names)].append(score(call.turns, call.duration_s, spans))
        cells = [f"{statistics.mean(r['found'] == n for r in results[n]):.0%} / "
                 f"{statistics.mean(r['right'] for r in results[n]):.3f}" for n in sizes]  # fmt: skip
        multi = [r["right"] for n in sizes if n > 1 for r in results[n]]
        print(f"| {name} | " + " | ".join(cells) + f" | {statistics.mean(multi):.3f} |")
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
