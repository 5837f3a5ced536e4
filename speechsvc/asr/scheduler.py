"""Engine slots shared by every job: a fixed number of threads run transcription tasks (one channel
each), taking them round-robin across jobs so that a long call cannot hold back short ones queued
behind it. The model is built with as many CTranslate2 workers as there are slots, so slots really run
at the same time; with one thread per slot on the CPU, each core stays busy (see issue "Throughput")."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


GPU_BATCH_SIZE = 16
CPU_BATCH_PER_CORE = 4  # measured on two cores: batches of 8 beat 4 (benchmarks/bench_service.py)
MAX_CPU_BATCH = 16


@dataclass(frozen=True)
class EnginePlan:
    """How the engine uses the machine, from --workers, --cpu-threads, --batch-size and --device-index
    (0 = automatic) and the device."""

    device: str
    slots: int  # CTranslate2 workers per device: engine calls running at the same time on it
    threads: int  # CTranslate2 threads per worker
    batch_size: int  # > 1: the lockstep decoder's most windows per batch; 1: the sequential decoder alone
    device_index: tuple[int, ...] = (0,)

    @property
    def runners(self) -> int:
        """Engine calls running at once across every device."""
        return self.slots * len(self.device_index)

    @property
    def job_workers(self) -> int:
        """Jobs decoded and prepared at once, bounded so that memory stays flat under a burst (the rest of
        the queue waits on disk). The sequential decoder: one more than the runners, so that the next job
        is ready when a runner frees up. The lockstep decoder on CUDA: enough channels in flight to fill
        every runner's batch even with mono calls (runners x batch size; with 2 x 16, batches of 16 form).
        On the CPU fewer: more jobs in flight made the lockstep decoder slower on two cores (measured:
        benchmarks/bench_service.py), as each channel holds a thread and its features."""
        if self.batch_size == 1:
            return self.runners + 1
        if self.device == "cuda":
            return self.runners * self.batch_size
        return self.runners + max(1, self.batch_size // 4)

    @property
    def prepare_slots(self) -> int:
        """Channels running VAD and building features at once (the lockstep decoder's preparation slots).
        On the CPU one per runner: they share the cores with the decoder (measured). On CUDA the decoder
        leaves the cores free, and a batch of 16 windows is only as full as the channels prepared for it:
        half the cores (not measured on a GPU yet)."""
        if self.device == "cuda":
            return max(self.runners, (os.cpu_count() or 1) // 2)
        return self.runners


def plan_engine(
    device: str, workers: int, cpu_threads: int, batch_size: int = 0, device_index: tuple[int, ...] = (0,)
) -> EnginePlan:
    """The lockstep decoder everywhere. On the CPU one slot per core with one thread each (VAD, features
    and Python leave a core idle otherwise) and batches of up to CPU_BATCH_PER_CORE windows per core. On
    CUDA two slots per GPU, so that one batch is prepared and mapped back while the other decodes, and
    batches of GPU_BATCH_SIZE windows (a constant: no GPU was at hand to size it from free memory)."""
    cores = os.cpu_count() or 1
    if device == "cuda":
        slots = workers or 2
        return EnginePlan(
            device, slots, cpu_threads or max(1, cores // slots), batch_size or GPU_BATCH_SIZE, device_index
        )
    slots = workers or cores
    batch = batch_size or min(MAX_CPU_BATCH, CPU_BATCH_PER_CORE * cores)
    return EnginePlan(device, slots, cpu_threads or max(1, cores // slots), batch, (0,))


class FairPool:
    def __init__(self, slots: int, name: str = "engine") -> None:
        self._queues: OrderedDict[str, deque[tuple[Future[Any], Callable[[], Any]]]] = OrderedDict()
        self._ready = threading.Condition()
        self._closed = False
        self.slots = slots
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True) for i in range(slots)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, job_key: str, task: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        with self._ready:
            if self._closed:
                raise RuntimeError("the engine pool is closed")
            self._queues.setdefault(job_key, deque()).append((future, task))
            self._ready.notify()
        return future

    def _next(self) -> tuple[Future[Any], Callable[[], Any]] | None:
        with self._ready:
            while not self._queues and not self._closed:
                self._ready.wait()
            if not self._queues:
                return None
            job_key, queue = next(iter(self._queues.items()))
            item = queue.popleft()
            del self._queues[job_key]
            if queue:
                self._queues[job_key] = queue  # to the back of the line: the next task is another job's
            return item

    def _run(self) -> None:
        while (item := self._next()) is not None:
            future, task = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(task())
            except BaseException as exc:
                future.set_exception(exc)

    def close(self) -> None:
        """Stop taking tasks; queued ones are cancelled, running ones finish on their own."""
        with self._ready:
            self._closed = True
            for queue in self._queues.values():
                for future, _ in queue:
                    # cancel() alone does not wake concurrent.futures.wait(): a cancelled future counts as
                    # done only once set_running_or_notify_cancel() has moved it to CANCELLED_AND_NOTIFIED
                    if future.cancel():
                        future.set_running_or_notify_cancel()
            self._queues.clear()
            self._ready.notify_all()
