"""The eigengap count rule that bench_diarize.py compares with the service's (benchmarks/diarize_eigengap.py),
on made-up embeddings: the comparison is only fair if the rule counts clear cases right."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tests.unit.test_diarize import voices

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from diarize_eigengap import eigengap_count


@pytest.mark.parametrize("sizes", [[60], [30, 20], [15, 15, 15], [20, 10, 15, 12]])
def test_clear_voices_are_counted(sizes: list[int]) -> None:
    embeddings = np.concatenate([voices([size], seed=10 + i) for i, size in enumerate(sizes)])
    assert eigengap_count(embeddings, 1, 8) == len(sizes)


def test_the_bounds_hold() -> None:
    embeddings = np.concatenate([voices([20], seed=1), voices([20], seed=2), voices([20], seed=3)])
    assert eigengap_count(embeddings, 1, 2) <= 2
    assert eigengap_count(voices([40], seed=4), 2, 8) >= 2
