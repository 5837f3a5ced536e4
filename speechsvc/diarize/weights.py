"""The speaker model's weights, read without torch.

The model is Resemblyzer's GE2E voice encoder (`pretrained.pt`, 17 MB, Apache-2.0), shipped inside the
`resemblyzer` wheel on PyPI. The package itself imports torch; we only need its file, so we locate the
package without importing it and read the checkpoint with pickle and numpy. The checkpoint is in torch's
legacy serialisation (torch < 1.6): five pickles in a row (magic, protocol, system info, the object with
storages as persistent ids, the storage keys), then each storage as an int64 element count and its raw
bytes (torch/serialization.py, `_legacy_load`).
"""

from __future__ import annotations

import collections
import importlib.util
import pickle
import struct
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

WEIGHTS_PACKAGE = "resemblyzer"
WEIGHTS_FILE = "pretrained.pt"
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


def packaged_weights() -> Path | None:
    """Where the resemblyzer wheel put pretrained.pt, or None when it is not installed."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)  # finds the package without running its __init__
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / WEIGHTS_FILE
    return path if path.is_file() else None


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

    def __init__(self, file: IO[bytes], storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return name
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"unexpected object in a weights file: {module}.{name}")

    def persistent_load(self, pid: Any) -> _Storage:
        _, storage_type, key, _location, _size, _view = pid
        return self.storages.setdefault(str(key), _Storage(_STORAGE_DTYPES[storage_type]))


def load_state_dict(path: Path, entry: str = "model_state") -> Weights:
    """The named state dict of a legacy torch checkpoint, as float arrays by parameter name."""
    with path.open("rb") as file:
        if pickle.load(file) != LEGACY_MAGIC:
            raise ValueError(f"{path} is not a legacy torch checkpoint")
        pickle.load(file)  # protocol version
        pickle.load(file)  # system info (little-endian, type sizes)
        storages: dict[str, _Storage] = {}
        checkpoint = _Unpickler(file, storages).load()
        for key in pickle.load(file):
            storage = storages[str(key)]
            (count,) = struct.unpack("<q", file.read(8))
            size = count * np.dtype(storage.dtype).itemsize
            storage.data = np.frombuffer(file.read(size), dtype=storage.dtype, count=count)
    weights: Weights = {}
    for name, (storage, offset, shape, stride) in checkpoint[entry].items():
        itemsize = storage.data.itemsize
        view = np.lib.stride_tricks.as_strided(
            storage.data[offset:], shape, [step * itemsize for step in stride], writeable=False
        )
        weights[name] = np.array(view, dtype=np.float32)
    return weights
