"""The numpy CAM++ speaker model against torch's filterbanks and embeddings of the same weights
(fixtures/speakers/make_campplus_reference.py), and the torch-free reading of its zip-format checkpoint."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from speechsvc.diarize.campplus import EMBEDDING_SIZE, WINDOW_FRAMES, CamPlusEncoder
from speechsvc.diarize.weights import CAMPPLUS, load_zip_state_dict, packaged_weights
from tests.conftest import FIXTURES, installed_weights

REFERENCE = FIXTURES / "speakers" / "campplus_reference.npz"


@pytest.fixture(scope="module")
def encoder() -> CamPlusEncoder:
    return CamPlusEncoder.from_file(installed_weights(CAMPPLUS))


def test_weights_read_without_torch() -> None:
    path = packaged_weights(CAMPPLUS)
    assert path is not None and "site-packages" in str(path)
    weights = load_zip_state_dict(path)
    assert weights["head.conv1.weight"].shape == (32, 1, 3, 3)
    assert weights["xvector.block2.tdnnd24.cam_layer.linear_local.weight"].shape == (32, 128, 3)
    assert weights["xvector.dense.linear.weight"].shape == (EMBEDDING_SIZE, 1024, 1)
    assert all(np.isfinite(w).all() for w in weights.values())


def test_filterbanks_match_torchaudio_kaldi(encoder: CamPlusEncoder) -> None:
    reference = np.load(REFERENCE)
    fbank = encoder.mel(reference["samples"].astype(np.float32) / 32767)
    assert fbank.shape == reference["fbank"].shape
    np.testing.assert_allclose(fbank, reference["fbank"], atol=1e-2)


def test_embeddings_match_torch(encoder: CamPlusEncoder) -> None:
    """The model run on each window alone, as torch ran it."""
    reference = np.load(REFERENCE)
    fbank = reference["fbank"].astype(np.float32)
    windows = np.stack([fbank[s : s + WINDOW_FRAMES] for s in reference["starts"].tolist()])
    mine = encoder.embed(windows - windows.mean(axis=1, keepdims=True))
    assert mine.shape == reference["embeddings"].shape == (len(windows), EMBEDDING_SIZE)
    assert np.sum(mine * reference["embeddings"], axis=1).min() > 0.9999
    np.testing.assert_allclose(mine, reference["embeddings"], atol=1e-4)


def test_shared_front_end_stays_near_each_window_alone(encoder: CamPlusEncoder) -> None:
    """embed_frames runs the front end once over all the frames and normalises over a sliding 3 s: on
    real speech each window's embedding stays near the one torch made from that window alone."""
    reference = np.load(REFERENCE)
    mine = encoder.embed_frames(
        encoder.mel(reference["samples"] / np.float32(32767)), reference["starts"].tolist()
    )
    cosine = np.sum(mine * reference["embeddings"], axis=1)
    assert cosine.min() > 0.9, cosine


def test_window_past_the_end_is_padded_with_the_quietest_frame(encoder: CamPlusEncoder) -> None:
    fbank = np.random.default_rng(1).normal(size=(100, 80)).astype(np.float32)
    padded = np.concatenate([fbank, np.repeat(fbank.min(axis=0, keepdims=True), WINDOW_FRAMES - 100, axis=0)])
    np.testing.assert_allclose(encoder.embed_frames(fbank, [0]), encoder.embed_frames(padded, [0]), atol=1e-6)


def test_no_windows_no_embeddings(encoder: CamPlusEncoder) -> None:
    assert encoder.embed_frames(np.zeros((50, 80), np.float32), []).shape == (0, EMBEDDING_SIZE)


def test_same_voice_nearer_than_another(encoder: CamPlusEncoder) -> None:
    """Two windows of JFK stand nearer each other than either stands to a generated voice's."""
    import av

    with av.open(str(FIXTURES / "speakers" / "voice_en_us_m3.ogg")) as container:
        other = np.concatenate([f.to_ndarray().mean(axis=0) for f in container.decode(audio=0)])
    jfk = np.load(REFERENCE)["samples"].astype(np.float32) / 32767
    embeddings = encoder.embed_frames(np.concatenate([encoder.mel(jfk), encoder.mel(other[:64000].astype(np.float32))]),
                                      [0, 200, 400])  # fmt: skip
    same, different = float(embeddings[0] @ embeddings[1]), float(embeddings[0] @ embeddings[2])
    assert same > different + 0.2, (same, different)


def _zip_checkpoint(path: Path, state: bytes, storages: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", state)
        for key, data in storages.items():
            archive.writestr(f"archive/data/{key}", data)
    return path


class _Calls:
    """Pickles as a call to `os.getpid` (harmless), standing for any callable a hostile file names."""

    def __reduce__(self) -> tuple[object, ...]:
        import os

        return (os.getpid, ())


def test_a_zip_checkpoint_may_not_call_anything(tmp_path: Path) -> None:
    path = _zip_checkpoint(tmp_path / "hostile.pt", pickle.dumps({"w": _Calls()}, protocol=2), {})
    with pytest.raises(pickle.UnpicklingError, match=r"getpid"):
        load_zip_state_dict(path)


def _one_tensor(shape: tuple[int, ...], stride: tuple[int, ...]) -> bytes:
    """data.pkl of a state dict with one tensor of the given geometry on a 4-float storage 'k'."""
    return (
        b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01ctorch._utils\n_rebuild_tensor_v2\nq\x02((X\x07\x00\x00\x00"
        b"storageq\x03ctorch\nFloatStorage\nq\x04X\x01\x00\x00\x00kq\x05X\x03\x00\x00\x00cpuq\x06K\x04tq\x07QK\x00"
        + pickle.dumps(shape, protocol=2)[2:-1]
        + pickle.dumps(stride, protocol=2)[2:-1]
        + b"\x89ccollections\nOrderedDict\nq\x08)Rq\ttq\nRq\x0bs."
    )


def test_zip_tensor_geometry_is_checked_against_its_storage(tmp_path: Path) -> None:
    storage = {"k": np.arange(4, dtype=np.float32).tobytes()}
    fine = load_zip_state_dict(_zip_checkpoint(tmp_path / "fine.pt", _one_tensor((2, 2), (2, 1)), storage))
    assert fine["w"].tolist() == [[0.0, 1.0], [2.0, 3.0]]
    with pytest.raises(ValueError, match="tensor 'w'"):
        load_zip_state_dict(_zip_checkpoint(tmp_path / "bad.pt", _one_tensor((2, 2), (4096, 1)), storage))
