"""The numpy GE2E encoder against resemblyzer's own mel and embeddings (fixtures/speakers/make_reference.py),
and the torch-free reading of its weights."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from speechsvc.diarize.encoder import WINDOW_FRAMES, VoiceEncoder, normalize_volume
from speechsvc.diarize.weights import GE2E, load_state_dict, packaged_weights
from tests.conftest import FIXTURES, installed_weights

REFERENCE = FIXTURES / "speakers" / "resemblyzer_reference.npz"


@pytest.fixture(scope="module")
def encoder() -> VoiceEncoder:
    return VoiceEncoder.from_file(installed_weights(GE2E))


def test_weights_read_without_torch() -> None:
    path = packaged_weights(GE2E)
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


def _checkpoint(path: Path, headers: tuple[object, ...], body: bytes, tail: bytes = b"") -> Path:
    with path.open("wb") as file:
        for header in headers:
            pickle.dump(header, file)
        file.write(body + tail)
    return path


class _Calls:
    """Pickles as a call to `os.getpid` (harmless), standing for any callable a hostile file names."""

    def __reduce__(self) -> tuple[object, ...]:
        import os

        return (os.getpid, ())


@pytest.mark.parametrize("place", [0, 1, 2, 3])
def test_every_pickle_in_a_weights_file_is_restricted(tmp_path: Path, place: int) -> None:
    """Issue 25, finding 9: the three headers and the storage keys are unpickled under the same
    restriction as the state dict (before, only the state dict was)."""
    parts: list[object] = [0x1950A86A20F9469CFC6C, 1001, {}]
    if place < 3:
        parts[place] = _Calls()
        path = _checkpoint(tmp_path / "hostile.pt", tuple(parts), pickle.dumps({}))
    else:  # the storage keys, after an empty state dict
        path = _checkpoint(tmp_path / "hostile.pt", tuple(parts), pickle.dumps({}), pickle.dumps(_Calls()))
    with pytest.raises(pickle.UnpicklingError, match=r"getpid"):
        load_state_dict(path)


def _one_tensor(path: Path, shape: tuple[int, ...], stride: tuple[int, ...], offset: int = 0) -> Path:
    """A legacy checkpoint with one 4-float storage and one tensor of the given geometry on it."""
    state = (
        b"\x80\x02}q\x00X\x0b\x00\x00\x00model_stateq\x01}q\x02X\x01\x00\x00\x00wq\x03ctorch._utils\n"
        b"_rebuild_tensor_v2\nq\x04((X\x07\x00\x00\x00storageq\x05ctorch\nFloatStorage\nq\x06X\x01\x00"
        b"\x00\x00kq\x07X\x03\x00\x00\x00cpuq\x08K\x04Ntq\tQ"
        + pickle.dumps(offset, protocol=2)[2:-1]
        + pickle.dumps(shape, protocol=2)[2:-1]
        + pickle.dumps(stride, protocol=2)[2:-1]
        + b"\x89tq\nRq\x0bss."
    )
    storage = pickle.dumps(["k"]) + (4).to_bytes(8, "little") + np.arange(4, dtype=np.float32).tobytes()
    return _checkpoint(path, (0x1950A86A20F9469CFC6C, 1001, {}), state, storage)


def test_tensor_geometry_is_checked_against_its_storage(tmp_path: Path) -> None:
    """Issue 25, finding 9: a crafted shape or stride that reaches past the storage is refused (before,
    numpy read outside the buffer: garbage or SIGSEGV)."""
    fine = load_state_dict(_one_tensor(tmp_path / "fine.pt", (2, 2), (2, 1)))
    assert fine["w"].tolist() == [[0.0, 1.0], [2.0, 3.0]]
    for shape, stride, offset in [((2, 2), (4096, 1), 0), ((1_000_000,), (1,), 0), ((4,), (1,), 3),
                                  ((2,), (-1,), 0)]:  # fmt: skip
        with pytest.raises(ValueError, match="tensor 'w'"):
            load_state_dict(_one_tensor(tmp_path / "bad.pt", shape, stride, offset))


def test_weights_come_from_the_installed_wheel_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 25, finding 9: `python -m speechsvc` puts the working directory first on sys.path; a
    ./resemblyzer/ there must not replace the wheel's weights, nor can a file that is not the wheel's."""
    planted = tmp_path / "resemblyzer"
    planted.mkdir()
    (planted / "__init__.py").write_text("")
    (planted / "pretrained.pt").write_bytes(b"not the model")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    path = packaged_weights(GE2E)
    assert path is not None and planted not in path.parents
    assert "site-packages" in str(path) or "dist-packages" in str(path)
