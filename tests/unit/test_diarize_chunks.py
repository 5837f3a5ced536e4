"""Speakers found on chunks of about 3 s (issue 24, round 3), on made-up embeddings: a stretch holding two
voices is cut where the voice changes, windows across a pause join the nearest speaker, and a short
cluster near a voice heard long is not a second speaker unless it stands well apart."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from speechsvc.diarize.chunks import chunk_windows, window_speakers
from speechsvc.diarize.clustering import FAR_DISTANCE, SpeakerCount

STEP_S = 0.8
Rows = npt.NDArray[np.float32]


def voice(direction: Rows, windows: int, seed: int, noise: float = 0.02) -> Rows:
    """Windows of one voice: unit vectors close to `direction`."""
    rng = np.random.default_rng(seed)
    rows = direction + rng.normal(scale=noise / np.sqrt(len(direction)), size=(windows, len(direction)))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def apart(base: Rows, distance: float, seed: int) -> Rows:
    """A unit vector at this cosine distance from `base`."""
    other = np.random.default_rng(seed).normal(size=len(base))
    other -= (other @ base) * base
    other /= np.linalg.norm(other)
    result: Rows = ((1 - distance) * base + np.sqrt(1 - (1 - distance) ** 2) * other).astype(np.float32)
    return result


BASE = apart(np.eye(256, dtype=np.float32)[0], 0.0, 0)


def test_a_stretch_with_two_voices_is_cut_where_the_voice_changes() -> None:
    """Five windows of one voice, then three of another, with no pause between: no chunk mixes them."""
    embeddings = np.concatenate([voice(BASE, 5, 1), voice(apart(BASE, 0.5, 2), 3, 3)])
    chunks = chunk_windows(embeddings, np.ones(8, bool), np.zeros(8, np.int64), STEP_S)
    first, second = set(chunks.of_window[:5].tolist()), set(chunks.of_window[5:].tolist())
    assert not first & second
    assert np.isclose(chunks.seconds.sum(), 8 * STEP_S)
    assert set(np.round(chunks.seconds / STEP_S).tolist()) <= {2, 3}


def test_windows_across_a_pause_are_in_no_chunk_and_take_the_nearest_voice() -> None:
    a, b = voice(BASE, 8, 4), voice(apart(BASE, 0.6, 5), 8, 6)
    embeddings = np.concatenate([a[:4], b[:1], a[4:], b[1:]])  # window 4 runs across a pause
    pure = np.ones(len(embeddings), bool)
    pure[4] = False
    stretch = np.array([0] * 5 + [1] * 4 + [2] * 7)
    assert chunk_windows(embeddings, pure, stretch, STEP_S).of_window[4] == -1
    labels = window_speakers(embeddings, pure, stretch, STEP_S, SpeakerCount())
    assert labels.tolist() == [0] * 4 + [1] + [0] * 4 + [1] * 7


def test_a_short_cluster_near_a_voice_heard_long_is_not_a_second_speaker() -> None:
    """2.4 s that stray 0.29 from 32 s of one voice (a burst of noise in its speech): one speaker, though the
    rule before (1.6 s windows, 0.22 apart) made it a second one. At 0.40 they are another person."""
    talk = voice(BASE, 40, 7)
    for distance, found in ((FAR_DISTANCE - 0.03, 1), (FAR_DISTANCE + 0.08, 2)):
        stray = voice(apart(BASE, distance, 8), 3, 9)
        embeddings = np.concatenate([talk[:20], stray, talk[20:]])
        stretch = np.array([0] * 20 + [1] * 3 + [2] * 20)
        labels = window_speakers(embeddings, np.ones(43, bool), stretch, STEP_S, SpeakerCount())
        assert labels.max() + 1 == found, distance
