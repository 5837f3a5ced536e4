"""The speaker model's weights, read without torch.

The model is Resemblyzer's GE2E voice encoder (`pretrained.pt`, 17 MB, Apache-2.0), shipped inside the
`resemblyzer` wheel on PyPI. The package itself imports torch; we only need its file, so we locate the
package without importing it and read the checkpoint with pickle and numpy. The checkpoint is in torch's
legacy serialisation (torch < 1.6): five pickles in a row (magic, protocol, system info, the object with
storages as persistent ids, the storage keys), then each storage as an int64 element count and its raw
bytes (torch/serialization.py, `_legacy_load`).

The file is not trusted blindly (issue 25): it is found through the installed distribution's record,
never through `sys.path` (where `python -m` puts the working directory first), and its SHA-256 must be
that of the 0.1.4 wheel's; every one of the five pickles is read by a restricted unpickler; every
tensor's shape, stride and offset are checked against its storage before a view is taken.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import importlib.metadata
import logging
import pickle
import struct
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

WEIGHTS_PACKAGE = "resemblyzer"
WEIGHTS_FILE = "pretrained.pt"
# sha256 of resemblyzer 0.1.4's pretrained.pt (the wheel's RECORD: OTc7hlmPo9qfzd7mFCOC7-CXd-jTfcnAVh9B8AcPE04)
WEIGHTS_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
INSTALL_HINT = (
    "install the speaker model: pip install 'speechsvc[diarize]' && pip install --no-deps resemblyzer==0.1.4 "
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


def packaged_weights() -> Path | None:
    """Where the installed resemblyzer distribution put pretrained.pt, or None when it is not installed or
    the file is not the one its wheel ships. Found through the distribution's file record, not by
    importing (the package's __init__ imports torch) nor through sys.path."""
    try:
        distribution = importlib.metadata.distribution(WEIGHTS_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    record = [entry for entry in distribution.files or () if entry.name == WEIGHTS_FILE]
    if not record:
        return None
    path = Path(str(distribution.locate_file(record[0]))).resolve()
    if not path.is_file():
        return None
    stat = path.stat()
    if _sha256(path, stat.st_size, stat.st_mtime_ns) != WEIGHTS_SHA256:
        log.warning("event=diarize_weights path=%s the speaker model's file is not resemblyzer 0.1.4's", path)
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
        if self.storages is None or not isinstance(pid, tuple) or len(pid) != 6:
            raise pickle.UnpicklingError("unexpected persistent id in a weights file")
        _, storage_type, key, _location, _size, _view = pid
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
    weights: Weights = {}
    for name, (storage, offset, shape, stride) in checkpoint[entry].items():
        weights[name] = np.array(_view(name, storage, offset, shape, stride), dtype=np.float32)
    return weights
