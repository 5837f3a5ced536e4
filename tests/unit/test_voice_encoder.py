"""The numpy GE2E encoder against resemblyzer's own mel and embeddings (fixtures/speakers/make_reference.py),
and the torch-free reading of its weights."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from speechsvc.diarize.encoder import WINDOW_FRAMES, VoiceEncoder, normalize_volume
from speechsvc.diarize.weights import load_state_dict, packaged_weights
from tests.conftest import FIXTURES

REFERENCE = FIXTURES / "speakers" / "resemblyzer_reference.npz"


@pytest.fixture(scope="module")
def encoder() -> VoiceEncoder:
    path = packaged_weights()
    if path is None:
        pytest.fail(
            "the speaker model is missing: make installs it (pip install --no-deps resemblyzer==0.1.4)"
        )
    return VoiceEncoder.from_file(path)


def test_weights_read_without_torch() -> None:
    path = packaged_weights()
    assert path is not None
    weights = load_state_dict(path)
    assert weights["lstm.weight_ih_l0"].shape == (1024, 40)
    assert weights["lstm.weight_hh_l2"].shape == (1024, 256)
    assert weights["linear.weight"].shape == (256, 256)
    assert all(np.isfinite(w).all() for w in weights.values())


def test_weights_file_may_not_call_anything(tmp_path: Path) -> None:
    """A pickle that names any other callable (os.system, say) is refused before it runs."""
    hostile = tmp_path / "hostile.pt"
    with hostile.open("wb") as file:
        for header in (0x1950A86A20F9469CFC6C, 1001, {}):
            pickle.dump(header, file)
        file.write(b"cos\nsystem\n(S'echo owned'\ntR.")
    with pytest.raises(pickle.UnpicklingError, match=r"os\.system"):
        load_state_dict(hostile)


def test_mel_matches_librosa(encoder: VoiceEncoder) -> None:
    reference = np.load(REFERENCE)
    wav = normalize_volume(reference["samples"].astype(np.float32) / 32767)
    mel = encoder.mel(wav)
    assert mel.shape == reference["mel"].shape
    np.testing.assert_allclose(mel, reference["mel"], rtol=1e-3, atol=1e-4)


def test_embeddings_match_resemblyzer(encoder: VoiceEncoder) -> None:
    reference = np.load(REFERENCE)
    mine = encoder.embed_frames(reference["mel"].astype(np.float32), reference["starts"].tolist())
    assert mine.shape == reference["embeddings"].shape == (len(reference["starts"]), 256)
    cosine = np.sum(mine * reference["embeddings"], axis=1)
    assert cosine.min() > 0.9999
    np.testing.assert_allclose(mine, reference["embeddings"], atol=1e-4)


def test_window_past_the_end_is_zero_padded(encoder: VoiceEncoder) -> None:
    mel = np.random.default_rng(1).random((100, 40), dtype=np.float32)
    padded = np.concatenate([mel, np.zeros((WINDOW_FRAMES - 100, 40), np.float32)])
    np.testing.assert_allclose(encoder.embed_frames(mel, [0]), encoder.embed(padded[None]), atol=1e-6)
