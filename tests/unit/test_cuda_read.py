"""The CUDA path read against CTranslate2 (issue 28), tested on the CPU: bfloat16 encoder outputs reach the
host as float32, `auto` never asks a GPU for a compute type it cannot run, and the lockstep batcher fills
the batch size the plan names when enough channels are in flight."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import ctranslate2
import numpy as np
import pytest

from speechsvc.asr import lockstep
from speechsvc.asr.lockstep import LockstepBatcher, host_array
from speechsvc.asr.models import pick_compute_type
from speechsvc.asr.scheduler import plan_engine
from speechsvc.operations.metrics import Metrics

TIMEOUT_S = 20
PASCAL = {"float32", "int8", "int8_float32"}  # compute capability 6.1: no float16, no bfloat16
AMPERE = {"float32", "int8", "int8_float32", "float16", "int8_float16", "bfloat16", "int8_bfloat16"}


class BfloatWhisper:
    """A stand-in CTranslate2 Whisper whose encoder answers in bfloat16, as it does with compute type
    bfloat16 or int8_bfloat16."""

    device = "cpu"

    def encode(self, features: Any, to_cpu: bool = False) -> Any:
        doubled = np.array(features) * 2
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(doubled)).to(
            ctranslate2.DataType.bfloat16
        )


def test_bfloat16_encoder_output_reaches_the_host_as_float32() -> None:
    view = ctranslate2.StorageView.from_array(np.arange(6, dtype=np.float32).reshape(2, 3))
    with pytest.raises(RuntimeError, match="bfloat16"):
        np.array(view.to(ctranslate2.DataType.bfloat16))  # what the batcher did before
    host = host_array(view.to(ctranslate2.DataType.bfloat16))
    assert host.dtype == np.float32 and host.tolist() == [[0, 1, 2], [3, 4, 5]]  # small integers: exact


def test_a_bfloat16_batch_is_encoded_and_each_item_owns_its_array() -> None:
    batcher = LockstepBatcher(BfloatWhisper(), batch_size=4, runners=1)
    try:
        encoded = batcher.call("a/0", "a", "encode", (2, 2), np.full((2, 2), 1.5, dtype=np.float32))
    finally:
        batcher.close()
    assert encoded.array.dtype == np.float32 and encoded.array.tolist() == [[3.0, 3.0], [3.0, 3.0]]
    assert encoded.array.base is None  # a copy, not a view that keeps the whole batch alive


def supported_by(table: dict[int, set[str]]) -> Any:
    def supported(device: str, index: int) -> set[str]:
        return table[index] if device == "cuda" else {"float32", "int8", "int8_float32", "int16"}

    return supported


def test_auto_picks_float16_only_where_every_gpu_runs_it(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="speechsvc.asr.models"):
        assert pick_compute_type("auto", "cuda", (0,), supported_by({0: AMPERE})) == "float16"
    assert "float16" in caplog.text  # the choice is logged
    assert pick_compute_type("auto", "cuda", (0,), supported_by({0: PASCAL})) == "int8_float32"
    assert pick_compute_type("auto", "cuda", (0, 1), supported_by({0: AMPERE, 1: PASCAL})) == "int8_float32"
    assert pick_compute_type("auto", "cuda", (0,), supported_by({0: {"float32"}})) == "float32"
    assert pick_compute_type("auto", "cpu", (0,), supported_by({})) == "int8"


def test_a_compute_type_the_gpu_cannot_run_is_refused_before_loading() -> None:
    with pytest.raises(ValueError, match=r"--compute-type float16 is not supported on cuda\[1\]"):
        pick_compute_type("float16", "cuda", (1,), supported_by({1: PASCAL}))
    assert pick_compute_type("bfloat16", "cuda", (0,), supported_by({0: AMPERE})) == "bfloat16"
    assert pick_compute_type("default", "cuda", (0,), supported_by({0: PASCAL})) == "default"


class SlowWhisper:
    """A stand-in model whose batches take a while, as a GPU's do, and that records their sizes."""

    device = "cuda"

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.lock = threading.Lock()

    def encode(self, features: Any, to_cpu: bool = False) -> Any:
        array = np.array(features)
        with self.lock:
            self.sizes.append(len(array))
        time.sleep(0.05)
        return array


def encode_sizes(
    channels: int, runners: int, batch_size: int, windows: int, metrics: Metrics | None = None
) -> Counter[int]:
    """`channels` channels (one per mono job) each encode `windows` windows one after the other. The
    runners wait for every active channel's call (a long GATHER_S), so thread start-up on a busy machine
    does not cut a batch short."""
    model = SlowWhisper()
    batcher = LockstepBatcher(
        model, batch_size, runners, on_batch=metrics.lockstep_batch if metrics else None
    )
    features = np.zeros((2, 2), dtype=np.float32)

    def channel(job: str) -> None:
        for _ in range(windows):
            batcher.call(f"{job}/0", job, "encode", (2, 2), features)
        batcher.leave(job)

    for number in range(channels):
        batcher.join(f"job{number}")
    threads = [threading.Thread(target=channel, args=(f"job{n}",)) for n in range(channels)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT_S)
    batcher.close()
    assert sorted(batcher.sizes["encode"].elements()) == sorted(model.sizes)  # the batcher counts them all
    return batcher.sizes["encode"]


@pytest.fixture(autouse=True)
def patient_gathering(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lockstep, "GATHER_S", 2.0)


def test_what_waits_is_shared_evenly_between_the_runners() -> None:
    # twelve channels asking at once on two runners: before, 6 then 3, 2, 1 (each runner divided what was
    # left by every runner, busy or not); now six each
    metrics = Metrics()
    sizes = encode_sizes(channels=12, runners=2, batch_size=16, windows=3, metrics=metrics)
    assert sizes == Counter({6: 6})
    assert 'speechsvc_lockstep_batches_total{items="6",kind="encode"} 6.0' in metrics.render().decode()


def test_the_cuda_plan_keeps_enough_channels_in_flight_to_fill_its_batches() -> None:
    plan = plan_engine("cuda", 0, 0)
    # the plan's job workers, each on a mono call: every batch is full (before: 6 jobs, batches of 3)
    sizes = encode_sizes(
        channels=plan.job_workers, runners=plan.runners, batch_size=plan.batch_size, windows=2
    )
    assert set(sizes) == {plan.batch_size}
