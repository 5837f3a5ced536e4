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
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from speechsvc.asr.engine import (
    SAMPLE_RATE_HZ,
    ChannelTranscript,
    ProgressFn,
    TranscribeOptions,
    transcribe_with,
)
from speechsvc.asr.pieces import joined, pieces
from speechsvc.audio.isolate import release_pages
from speechsvc.errors import JobCanceled

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


def _frozen(value: Any) -> Hashable:
    if isinstance(value, dict):
        return tuple(sorted((key, _frozen(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_frozen(item) for item in value)
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
            log.warning("event=batch_error kind=%s items=%d error=%r; retrying one by one", batch[0].kind,
                        len(batch), exc)  # fmt: skip
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
        results = list(self.model.align(self._stack(arrays), list(start_sequence), texts, frames,
                                        median_filter_width=median_filter_width))  # fmt: skip
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


class ChannelModel:
    """What faster-whisper's WhisperModel sees as its CTranslate2 model while it decodes one channel: the
    three calls that run the network go to the batcher; everything else is the real model's. `preparing`:
    released at the channel's first network call, when its VAD and features are done."""

    def __init__(self, real: Any, batcher: LockstepBatcher, channel: str, job_key: str, sot: int,
                 preparing: Preparing) -> None:  # fmt: skip
        self._real = real
        self._sot = sot
        self._preparing = preparing
        self._batcher = batcher
        self._channel = channel
        self._job_key = job_key

    def __getattr__(self, name: str) -> Any:  # is_multilingual, device, num_languages, …
        return getattr(self._real, name)

    def encode(self, features: Any, to_cpu: bool = False) -> Encoded:
        self._preparing.done()
        array = np.array(features)
        return self._batcher.call(self._channel, self._job_key, "encode", array.shape[1:], array[0])  # type: ignore[no-any-return]

    def generate(self, encoder_output: Encoded, prompts: list[list[int]], **kwargs: Any) -> list[Any]:
        (prompt,) = prompts  # the sequential decoder asks for one window at a time
        # batched with <|startoftranscript|> at one position (never cut to fit) and windows of one length (live)
        sot_at = prompt.index(self._sot) if self._sot in prompt else -1
        group = (_frozen(kwargs), sot_at, encoder_output.array.shape)
        result = self._batcher.call(
            self._channel, self._job_key, "generate", group, encoder_output, prompt, kwargs
        )
        return [result]

    def align(self, encoder_output: Encoded, start_sequence: list[int], text_tokens: list[list[int]],
              num_frames: list[int], median_filter_width: int = 7) -> list[Any]:  # fmt: skip
        group = (tuple(start_sequence), median_filter_width, encoder_output.array.shape)
        return self._batcher.call(self._channel, self._job_key, "align", group, encoder_output, text_tokens,  # type: ignore[no-any-return]
                                  num_frames, start_sequence, median_filter_width)  # fmt: skip

    def detect_language(self, encoder_output: Encoded, **kwargs: Any) -> Any:
        import ctranslate2

        view = ctranslate2.StorageView.from_array(np.ascontiguousarray(encoder_output.array[None]))
        return self._real.detect_language(view, **kwargs)


class Preparing:
    """A channel piece's way through the engine. It holds one of a few preparation slots from its start
    until its first network call, while the library runs VAD and builds the features: with every channel
    of every job on a thread of its own, this bounds how many read audio at once (memory, and the cores
    the decoder needs). At that first call it joins the batcher, whose runners from then on wait for its
    calls to batch them with the others'; it leaves at the end."""

    def __init__(self, slots: threading.Semaphore, batcher: LockstepBatcher, job_key: str) -> None:
        self._slots = slots
        self._batcher = batcher
        self._job_key = job_key
        self._held = self._joined = False

    def __enter__(self) -> Preparing:
        self._slots.acquire()
        self._held = True
        return self

    def done(self) -> None:
        if self._held:
            self._held = False
            self._slots.release()
            self._batcher.join(self._job_key)
            self._joined = True

    def __exit__(self, *_: object) -> None:
        if self._held:
            self._held = False
            self._slots.release()
        if self._joined:
            self._joined = False
            self._batcher.leave(self._job_key)


def channel_whisper(
    model: Any, batcher: LockstepBatcher, channel: str, job_key: str, preparing: Preparing
) -> Any:
    """A WhisperModel that is `model` in everything but where its network calls go."""
    from faster_whisper import WhisperModel

    view = WhisperModel.__new__(WhisperModel)
    view.__dict__.update(model.__dict__)
    sot = model.hf_tokenizer.token_to_id("<|startoftranscript|>")
    view.model = ChannelModel(model.model, batcher, channel, job_key, sot, preparing)
    return view


ChannelProgress = Callable[[int, float], None]  # (channel position, seconds of it transcribed so far)


class LockstepWhisperEngine:
    """faster-whisper's sequential decoder on every channel of every running job, its model calls batched
    in lockstep (LockstepBatcher). The Transcriber and ChannelBatching seams."""

    def __init__(
        self,
        name: str,
        model: Any,
        batch_size: int,
        runners: int,
        on_batch: Callable[[str, int], None] | None = None,
        prepare_slots: int = 0,
    ) -> None:
        self.name = name
        self.model = model
        self.multilingual = bool(model.model.is_multilingual)
        self.batch_size = batch_size
        self.batcher: LockstepBatcher | None = LockstepBatcher(
            model.model, batch_size, runners, name=f"lockstep-{name}", on_batch=on_batch
        )
        # channels reading audio and building features at once: one per runner on the CPU (memory: VAD and
        # the features of a 2-minute piece hold a hundred MB or so; measured: one in all cost 25 % of
        # throughput); EnginePlan.prepare_slots
        self._preparing = threading.Semaphore(prepare_slots or runners)

    def transcribe(
        self, audio: npt.NDArray[np.float32], options: TranscribeOptions, on_progress: ProgressFn
    ) -> ChannelTranscript:
        key = f"single-{id(audio)}-{threading.get_ident()}"
        return self.transcribe_channels(key, [audio], options, lambda _, at_s: on_progress(at_s))[0]

    def transcribe_channels(
        self,
        job_key: str,
        channels: list[npt.NDArray[np.float32]],
        options: TranscribeOptions,
        on_progress: ChannelProgress,
    ) -> list[ChannelTranscript]:
        """Every channel on a thread of its own, each a chain of pieces (speechsvc.asr.pieces) decoded one
        after the other; returns when all are done, or raises the first channel's error."""
        batcher = self.batcher
        if batcher is None:
            raise RuntimeError("the engine is closed")
        results: list[ChannelTranscript | None] = [None] * len(channels)
        errors: list[BaseException] = []
        reporting = threading.Lock()

        def progress(position: int, at_s: float) -> None:
            with reporting:
                on_progress(position, at_s)

        def decode(position: int) -> None:
            try:
                results[position] = self._decode_channel(batcher, job_key, position, channels[position], options,
                                                         progress)  # fmt: skip
            except BaseException as exc:
                errors.append(exc)
                batcher.cancel(job_key)  # the job's other channels stop at their next model call

        threads = [
            threading.Thread(target=decode, args=(position,), name=f"lockstep-{job_key[:8]}-{position}", daemon=True)
            for position in range(len(channels))
        ]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            canceled = [error for error in errors if isinstance(error, JobCanceled)]
            raise canceled[0] if canceled else errors[0]
        return [result for result in results if result is not None]

    def _decode_channel(
        self,
        batcher: LockstepBatcher,
        job_key: str,
        position: int,
        audio: npt.NDArray[np.float32],
        options: TranscribeOptions,
        on_progress: ChannelProgress,
    ) -> ChannelTranscript:
        channel = f"{job_key}/{position}"
        parts: list[tuple[float, ChannelTranscript]] = []
        with self._preparing:
            plan = pieces(audio)  # VAD over a long channel, to cut it at pauses
            release_pages(audio)
        for start, end in plan:
            offset_s = start / SAMPLE_RATE_HZ
            language = options.language or (parts[0][1].language if parts and self.multilingual else None)
            with Preparing(self._preparing, batcher, job_key) as preparing:
                whisper = channel_whisper(self.model, batcher, channel, job_key, preparing)
                piece = np.asarray(audio[start:end], dtype=np.float32)
                transcript = transcribe_with(whisper, piece, replace(options, language=language), self.multilingual,
                                         functools.partial(_at, on_progress, position, offset_s))  # fmt: skip
            del piece
            parts.append((offset_s, transcript))
            release_pages(audio)
            on_progress(position, end / SAMPLE_RATE_HZ)
        return joined(parts) if parts else ChannelTranscript("en", 1.0, 0.0, 0.0)

    def close(self) -> None:
        if self.batcher is not None:
            self.batcher.close()
        self.batcher = None
        self.model = None


def _at(on_progress: ChannelProgress, position: int, offset_s: float, at_s: float) -> None:
    on_progress(position, offset_s + at_s)
