"""The lockstep decoder: every running channel of every job decoded exactly as faster-whisper's sequential
decoder does it, with the model calls of all channels batched.

Each channel runs the library's own `WhisperModel.transcribe` (VAD, features, 30 s windows at its seek
position, previous-text prompt, timestamp tokens, temperature fallback, word alignment, seek to the last
timestamp) on its own thread. What that code sees as the CTranslate2 model is a `ChannelModel`: its
`encode`, `generate` and `align` do not run the model but hand the call to the `LockstepBatcher` and wait.
The batcher's runners gather the calls waiting from every channel into batches (one encoder call for
the current window of every channel, one `generate` with each item's own prompt, one alignment call) and
give each channel its own result, so every channel then seeks on by itself. A window whose result needs
a temperature fallback simply asks again, and lands in a follow-up batch. A channel joins when its job
starts and leaves when it ends, so a new job never waits for a batch to drain; jobs take turns
(round-robin) when more channels wait than a batch holds.

Batched or alone, a channel's text is the library's (tests/integration/test_lockstep.py): the library
decides everything, and a window's decoding does not depend on the other items of its batch.

This module is the batcher; the channels' side (ChannelModel, the engine) is speechsvc.asr.lockstep_channels.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

GATHER_S = 0.02  # a runner waits this long at most for the other active channels' calls to arrive
LIVE_PREFIX = "live:"  # job keys of live streams (speechsvc.live): their calls go first, ahead of file jobs


class Encoded:
    """One window's encoder output, on the host, so that any later batch can stack it with others."""

    __slots__ = ("array",)

    def __init__(self, array: npt.NDArray[Any]) -> None:
        self.array = array


@dataclass
class _Call:
    channel: str  # the channel's key (job key and position): one call at a time per channel
    job_key: str
    kind: str  # encode | generate | align
    group: Hashable  # calls batch together only when kind and group are equal
    payload: tuple[Any, ...]
    future: Future[Any] = field(default_factory=Future)
    since: float = field(default_factory=time.monotonic)


def frozen(value: Any) -> Hashable:
    if isinstance(value, dict):
        return tuple(sorted((key, frozen(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return tuple(frozen(item) for item in value)
    return value  # type: ignore[no-any-return]


class LockstepBatcher:
    """Runner threads that execute the channels' model calls in batches."""

    def __init__(
        self,
        model: Any,
        batch_size: int,
        runners: int,
        name: str = "lockstep",
        on_batch: Callable[[str, int], None] | None = None,
    ) -> None:
        self.model = model  # ctranslate2.models.Whisper
        self.batch_size = batch_size
        self.to_cpu = model.device == "cuda"  # encoder outputs come back to the host, to be restacked
        self._calls: OrderedDict[str, deque[_Call]] = OrderedDict()  # by job, oldest first
        self._active: dict[str, int] = {}  # channels that have joined, by job
        self._ready = threading.Condition()
        self._closed = False
        self._idle = runners  # runners not executing a batch: what waits is shared between them
        self._running = 0  # calls in batches being executed: their channels cannot ask again until done
        self._on_batch = on_batch  # (kind, items) after each batch: the /metrics histogram
        self.batches = self.items = self.mixed_batches = 0  # what ran, for tests and logs
        self.busy_s: dict[str, float] = {"encode": 0.0, "generate": 0.0, "align": 0.0}  # model time, by call
        self.sizes: dict[str, Counter[int]] = {kind: Counter() for kind in self.busy_s}  # batches by size
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True) for i in range(runners)
        ]
        for thread in self._threads:
            thread.start()

    # --- the channels' side ---------------------------------------------------------------------------

    def join(self, job_key: str) -> None:
        with self._ready:
            if self._closed:
                raise RuntimeError("the lockstep batcher is closed")
            self._active[job_key] = self._active.get(job_key, 0) + 1

    def leave(self, job_key: str) -> None:
        with self._ready:
            self._active[job_key] -= 1
            if not self._active[job_key]:
                del self._active[job_key]
            self._ready.notify_all()  # the runners may be waiting for this channel's call

    def call(self, channel: str, job_key: str, kind: str, group: Hashable, *payload: Any) -> Any:
        """Queue one model call and wait for its result (raises the batch's error for this item)."""
        request = _Call(channel, job_key, kind, group, payload)
        with self._ready:
            if self._closed:
                raise RuntimeError("the lockstep batcher is closed")
            self._calls.setdefault(job_key, deque()).append(request)
            self._ready.notify_all()
        return request.future.result()

    def cancel(self, job_key: str) -> None:
        """Fail a job's queued calls (the job was canceled or failed): its channel threads stop there."""
        with self._ready:
            for request in self._calls.pop(job_key, ()):
                request.future.set_exception(RuntimeError("the job stopped"))

    def close(self) -> None:
        with self._ready:
            self._closed = True
            for queue in self._calls.values():
                for request in queue:
                    request.future.set_exception(RuntimeError("the lockstep batcher is closed"))
            self._calls.clear()
            self._ready.notify_all()
        for thread in self._threads:
            thread.join()

    # --- the runners' side ----------------------------------------------------------------------------

    def _waiting(self) -> int:
        return sum(len(queue) for queue in self._calls.values())

    def _expected(self) -> int:
        """Calls the active channels can still send: not those whose call another runner is executing."""
        return sum(self._active.values()) - self._running

    def _next_batch(self) -> list[_Call] | None:
        with self._ready:
            while not self._calls and not self._closed:
                self._ready.wait()
            if self._closed:
                return None
            # lockstep: give every active channel the chance to have its next call in this batch, save those
            # whose call another runner is executing (waiting for them left that runner alone at work)
            oldest = min(queue[0].since for queue in self._calls.values())
            while (waiting := self._waiting()) < self._expected() and not self._closed:
                left = oldest + GATHER_S - time.monotonic()
                if left <= 0:
                    break
                self._ready.wait(left)
            if self._closed or not self._calls:
                return None if self._closed else []
            queues = sorted(
                self._calls.values(), key=_live_first
            )  # stable: round-robin order within each lane
            head = min(queues, key=lambda queue: (_live_first(queue), queue[0].since))[0]
            # an even share of what waits between the runners free to take it (this one included), so that
            # they all get work; a runner busy with its own batch takes no share. (Dividing what is left by
            # every runner, busy or not, gave twelve calls as batches of 6, 3, 2, 1 on two runners.)
            size = min(self.batch_size, -(-waiting // max(1, self._idle)))
            batch: list[_Call] = []
            taken = True
            while taken and len(batch) < size:  # one call per job per pass: round-robin across jobs
                taken = False
                for queue in queues:
                    match = next((c for c in queue if (c.kind, c.group) == (head.kind, head.group)), None)
                    if match is not None:
                        queue.remove(match)
                        batch.append(match)
                        taken = True
                        if len(batch) == size:
                            break
            for key in [key for key, queue in self._calls.items() if not queue]:
                del self._calls[key]
            if head.job_key in self._calls:
                self._calls.move_to_end(head.job_key)  # the next batch starts with another job's call
            self._idle -= 1
            self._running += len(batch)
            return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            if not batch:
                continue
            try:
                self._execute(batch)
            finally:
                with self._ready:
                    self._idle += 1
                    self._running -= len(batch)

    def _execute(self, batch: list[_Call]) -> None:
        run = {"encode": self._encode, "generate": self._generate, "align": self._align}[batch[0].kind]
        started = time.perf_counter()
        try:
            results = run(batch)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
                return
            # one bad window must not fail the other jobs in its batch: each alone, to find it
            log.warning(
                "event=batch_error kind=%s items=%d error=%r; retrying one by one",
                batch[0].kind,
                len(batch),
                exc,
            )
            for request in batch:
                try:
                    request.future.set_result(run([request])[0])
                except Exception as alone:
                    request.future.set_exception(alone)
            return
        with self._ready:
            self.busy_s[batch[0].kind] += time.perf_counter() - started
            self.batches += 1
            self.items += len(batch)
            self.mixed_batches += len({request.job_key for request in batch}) > 1
            self.sizes[batch[0].kind][len(batch)] += 1
        if self._on_batch is not None:
            self._on_batch(batch[0].kind, len(batch))
        for request, result in zip(batch, results, strict=True):
            request.future.set_result(result)

    def _stack(self, arrays: list[npt.NDArray[Any]]) -> Any:
        import ctranslate2

        return ctranslate2.StorageView.from_array(np.ascontiguousarray(np.stack(arrays)))

    def _encode(self, batch: list[_Call]) -> list[Encoded]:
        output = self.model.encode(self._stack([request.payload[0] for request in batch]), to_cpu=self.to_cpu)
        host = host_array(output)
        # a copy per item: a view would keep the whole batch's array alive for as long as any channel holds
        # its window (about 61 MB per batch of 16 with large-v3)
        return [Encoded(host[i].copy()) for i in range(len(batch))]

    def _generate(self, batch: list[_Call]) -> list[Any]:
        encoded = self._stack([request.payload[0].array for request in batch])
        prompts = [request.payload[1] for request in batch]
        kwargs = batch[0].payload[2]
        return list(self.model.generate(encoded, prompts, **kwargs))

    def _align(self, batch: list[_Call]) -> list[list[Any]]:
        arrays, texts, frames, counts = [], [], [], []
        for request in batch:
            encoded, text_tokens, num_frames = request.payload[0], request.payload[1], request.payload[2]
            arrays += [encoded.array] * len(text_tokens)
            texts += list(text_tokens)
            frames += (
                list(num_frames) if isinstance(num_frames, list | tuple) else [num_frames] * len(text_tokens)
            )
            counts.append(len(text_tokens))
        start_sequence, median_filter_width = batch[0].payload[3], batch[0].payload[4]
        results = list(
            self.model.align(
                self._stack(arrays),
                list(start_sequence),
                texts,
                frames,
                median_filter_width=median_filter_width,
            )
        )
        out, at = [], 0
        for count in counts:
            out.append(results[at : at + count])
            at += count
        return out


def _live_first(queue: deque[_Call]) -> bool:
    return not queue[0].job_key.startswith(LIVE_PREFIX)


def host_array(output: Any) -> npt.NDArray[Any]:
    """An encoder output as a numpy array on the host. A StorageView's array interface knows float32,
    float16, int8, int16 and int32 only: bfloat16 (compute types bfloat16 and int8_bfloat16, or a model saved
    so) becomes float32 here, and the model converts it back as it moves the next batch to its device."""
    import ctranslate2

    if getattr(output, "dtype", None) == ctranslate2.DataType.bfloat16:
        output = output.to(ctranslate2.DataType.float32)
    return np.array(output)
