"""The Transcriber seam and its real implementation, faster-whisper on CTranslate2."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

SAMPLE_RATE_HZ = 16000


@dataclass(frozen=True)
class TranscribeOptions:
    """Decoder settings of one job (API.md §1 query parameters)."""

    language: str | None = None  # None: detect per channel
    task: str = "transcribe"
    word_timestamps: bool = True
    vad: bool = True
    beam_size: int = 5
    prompt: str | None = None
    hotwords: str | None = None
    temperature: float | None = None


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    confidence: float


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    # Whisper's decoder statistics, which OpenAI's verbose_json shows per segment
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0
    temperature: float = 0.0
    tokens: tuple[int, ...] = ()
    seek: int = 0


@dataclass
class ChannelTranscript:
    language: str
    language_probability: float
    duration_s: float
    speech_s: float
    segments: list[Segment] = field(default_factory=list)


# Called after each segment with the audio time (seconds) transcribed so far; may raise to stop.
ProgressFn = Callable[[float], None]


class Transcriber(Protocol):
    """Turns one channel of 16 kHz mono float32 samples into a transcript."""

    name: str
    multilingual: bool

    def transcribe(
        self, audio: npt.NDArray[np.float32], options: TranscribeOptions, on_progress: ProgressFn
    ) -> ChannelTranscript: ...

    def close(self) -> None: ...


class WhisperEngine:
    """faster-whisper's WhisperModel: one model, loaded once, shared by every job."""

    def __init__(self, name: str, model: Any, batch_size: int = 1) -> None:
        from faster_whisper import BatchedInferencePipeline

        self.name = name
        self.model = model
        self.multilingual = bool(model.model.is_multilingual)
        self.batch_size = batch_size
        # batched: the VAD chunks of one channel go through CTranslate2 in batches, not one by one
        self.pipeline = BatchedInferencePipeline(model) if batch_size > 1 else None

    def transcribe(
        self, audio: npt.NDArray[np.float32], options: TranscribeOptions, on_progress: ProgressFn
    ) -> ChannelTranscript:
        kwargs: dict[str, Any] = {}
        if options.temperature is not None:
            kwargs["temperature"] = options.temperature
        engine = self.model
        if self.pipeline is not None:
            engine, kwargs["batch_size"] = self.pipeline, self.batch_size
        segments, info = engine.transcribe(
            audio,
            language=options.language if self.multilingual else "en",
            task=options.task if self.multilingual else "transcribe",
            beam_size=options.beam_size,
            word_timestamps=options.word_timestamps,
            vad_filter=options.vad,
            initial_prompt=options.prompt,
            hotwords=options.hotwords,
            **kwargs,
        )
        result = ChannelTranscript(
            language=info.language,
            language_probability=round(float(info.language_probability), 4),
            duration_s=round(float(info.duration), 3),
            speech_s=round(float(info.duration_after_vad), 3),
        )
        for seg in segments:  # a generator: recognition happens while we iterate
            words = tuple(
                Word(round(w.start, 3), round(w.end, 3), w.word, round(float(w.probability), 4))
                for w in seg.words or ()
            )
            result.segments.append(
                Segment(
                    round(seg.start, 3),
                    round(seg.end, 3),
                    seg.text,
                    words,
                    avg_logprob=round(float(seg.avg_logprob), 4),
                    compression_ratio=round(float(seg.compression_ratio), 4),
                    no_speech_prob=round(float(seg.no_speech_prob), 4),
                    temperature=float(seg.temperature or 0.0),
                    tokens=tuple(int(t) for t in seg.tokens),
                    seek=int(seg.seek),
                )
            )
            on_progress(float(seg.end))
        return result

    def close(self) -> None:
        # drop every reference (the batched pipeline holds one too) so that the CTranslate2 model and its
        # worker threads are freed here, not during interpreter exit, where C++ aborts ("terminate called
        # without an active exception")
        self.pipeline = None
        self.model = None
