"""The lockstep decoder's channels: faster-whisper's own sequential decoder on every channel of every
running job, on a thread of its own, with a model whose network calls go to the LockstepBatcher
(speechsvc.asr.lockstep). The engine behind the Transcriber and ChannelBatching seams.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
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
from speechsvc.asr.lockstep import Encoded, LockstepBatcher, frozen
from speechsvc.asr.pieces import Regions, joined, pieces
from speechsvc.audio.isolate import release_pages
from speechsvc.errors import JobCanceled


class ChannelModel:
    """What faster-whisper's WhisperModel sees as its CTranslate2 model while it decodes one channel: the
    three calls that run the network go to the batcher; everything else is the real model's. `preparing`:
    released at the channel's first network call, when its VAD and features are done."""

    def __init__(
        self, real: Any, batcher: LockstepBatcher, channel: str, job_key: str, sot: int, preparing: Preparing
    ) -> None:
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
        group = (frozen(kwargs), sot_at, encoder_output.array.shape)
        result = self._batcher.call(
            self._channel, self._job_key, "generate", group, encoder_output, prompt, kwargs
        )
        return [result]

    def align(
        self,
        encoder_output: Encoded,
        start_sequence: list[int],
        text_tokens: list[list[int]],
        num_frames: list[int],
        median_filter_width: int = 7,
    ) -> list[Any]:
        group = (tuple(start_sequence), median_filter_width, encoder_output.array.shape)
        return self._batcher.call(  # type: ignore[no-any-return]
            self._channel,
            self._job_key,
            "align",
            group,
            encoder_output,
            text_tokens,
            num_frames,
            start_sequence,
            median_filter_width,
        )

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
        speech: Sequence[Regions] | None = None,
    ) -> list[ChannelTranscript]:
        """Every channel on a thread of its own, each a chain of pieces (speechsvc.asr.pieces: cut at its
        `speech` when given) decoded one by one; returns when all are done, or raises the first error."""
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
                results[position] = self._decode_channel(
                    batcher,
                    job_key,
                    position,
                    channels[position],
                    options,
                    progress,
                    None if speech is None else speech[position],
                )
            except BaseException as exc:
                errors.append(exc)
                batcher.cancel(job_key)  # the job's other channels stop at their next model call

        threads = [
            threading.Thread(
                target=decode, args=(position,), name=f"lockstep-{job_key[:8]}-{position}", daemon=True
            )
            for position in range(len(channels))
        ]
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
        speech: Regions | None,
    ) -> ChannelTranscript:
        channel = f"{job_key}/{position}"
        parts: list[tuple[float, ChannelTranscript]] = []
        with self._preparing:
            plan = pieces(audio, speech=speech)  # VAD over a long channel (unless given), to cut it at pauses
            release_pages(audio)
        for start, end in plan:
            offset_s = start / SAMPLE_RATE_HZ
            language = options.language or (parts[0][1].language if parts and self.multilingual else None)
            with Preparing(self._preparing, batcher, job_key) as preparing:
                whisper = channel_whisper(self.model, batcher, channel, job_key, preparing)
                piece = np.asarray(audio[start:end], dtype=np.float32)
                transcript = transcribe_with(
                    whisper,
                    piece,
                    replace(options, language=language),
                    self.multilingual,
                    functools.partial(_at, on_progress, position, offset_s),
                )
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
