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
from typing import Any, TypeVar

T = TypeVar("T")


def engine_slots(device: str, workers: int, cpu_threads: int) -> tuple[int, int]:
    """(slots, CTranslate2 threads per slot): 0 means automatic. On the CPU one slot per core with one
    thread each; on CUDA two slots, so that one prepares (VAD, features) while the other decodes."""
    cores = os.cpu_count() or 1
    if device == "cuda":
        slots = workers or 2
        return slots, cpu_threads or max(1, cores // slots)
    slots = workers or cores
    return slots, cpu_threads or max(1, cores // slots)


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
