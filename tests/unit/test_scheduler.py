import threading
from concurrent.futures import CancelledError, wait

import pytest

from speechsvc.asr.scheduler import GPU_BATCH_SIZE, FairPool, plan_engine


def test_tasks_are_taken_round_robin_across_jobs() -> None:
    pool = FairPool(1)
    gate = threading.Event()
    order: list[str] = []
    blocker = pool.submit("gate", gate.wait)
    futures = [
        pool.submit(job, lambda name=name: order.append(name))
        for job, name in [("A", "a1"), ("A", "a2"), ("A", "a3"), ("B", "b1"), ("B", "b2")]
    ]
    gate.set()
    blocker.result(5)
    for future in futures:
        future.result(5)
    assert order == ["a1", "b1", "a2", "b2", "a3"]
    pool.close()


def test_exceptions_reach_the_caller_and_the_slot_goes_on() -> None:
    pool = FairPool(2)

    def boom() -> None:
        raise ValueError("bad channel")

    with pytest.raises(ValueError, match="bad channel"):
        pool.submit("A", boom).result(5)
    assert pool.submit("A", lambda: 42).result(5) == 42
    pool.close()


def test_close_cancels_what_is_queued() -> None:
    pool = FairPool(1)
    gate, started = threading.Event(), threading.Event()

    def hold() -> bool:
        started.set()
        return gate.wait()

    running = pool.submit("A", hold)
    assert started.wait(5)
    queued = pool.submit("B", lambda: 1)
    pool.close()
    gate.set()
    assert running.result(5) is True
    with pytest.raises(CancelledError):
        queued.result(5)
    _, not_done = wait([running, queued], timeout=5)  # as the pipeline waits: nothing left hanging
    assert not not_done
    with pytest.raises(RuntimeError):
        pool.submit("C", lambda: 1)


def test_plan_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    cpu = plan_engine("cpu", 0, 0)
    assert (cpu.slots, cpu.threads, cpu.batch_size) == (8, 1, 16)  # one slot per core, one thread each
    assert cpu.job_workers == 8 + 16 // 4  # the lockstep decoder needs channels in flight to batch
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert plan_engine("cpu", 0, 0).batch_size == 8  # four windows per core
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    sequential = plan_engine("cpu", 0, 0, 1)
    assert sequential.batch_size == 1 and sequential.job_workers == 9  # one job decoded ahead of the slots
    assert (plan_engine("cpu", 2, 0).slots, plan_engine("cpu", 2, 0).threads) == (2, 4)
    assert plan_engine("cpu", 2, 3).threads == 3
    assert plan_engine("cpu", 2, 0, 8).job_workers == 4  # batching needs more channels in flight
    gpu = plan_engine("cuda", 0, 0, 0, (0, 1))
    assert (gpu.slots, gpu.threads, gpu.batch_size, gpu.runners) == (2, 4, GPU_BATCH_SIZE, 4)
    # enough channels in flight to fill every runner's batch, even with mono calls
    assert gpu.job_workers == 4 * GPU_BATCH_SIZE
    assert gpu.prepare_slots == 4 and plan_engine("cpu", 0, 0).prepare_slots == 8
    assert plan_engine("cpu", 0, 0, 0, (1,)).device_index == (0,)  # no GPU numbers on the CPU
