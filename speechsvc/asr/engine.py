"""The Transcriber seam and its real implementation, faster-whisper on CTranslate2."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

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
    speaker: str | None = None  # with diarization: spk_0, spk_1, … (speechsvc.diarize)


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
    speaker: str | None = None  # with diarization: spk_0, spk_1, … (speechsvc.diarize)


@dataclass
class ChannelTranscript:
    language: str
    language_probability: float
    duration_s: float
    speech_s: float
    segments: list[Segment] = field(default_factory=list)
    # speech the VAD heard that still has no words after decoding it again (speechsvc.asr.coverage), and
    # speech_s less those gaps; None until the coverage check has run
    gaps: tuple[tuple[float, float], ...] = ()
    transcribed_s: float | None = None


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


@runtime_checkable
class ChannelBatching(Protocol):
    """A transcriber that takes every channel of a job at once and batches them with other jobs' channels."""

    def transcribe_channels(
        self,
        job_key: str,
        channels: list[npt.NDArray[np.float32]],
        options: TranscribeOptions,
        on_progress: Callable[[int, float], None],
        speech: Sequence[list[tuple[int, int]]] | None = None,  # each channel's VAD regions, when known
    ) -> list[ChannelTranscript]: ...


MIN_WORD_S = 0.02  # one step of Whisper's alignment (20 ms): no word is shorter


def with_duration(words: list[Word], segment_end: float) -> tuple[Word, ...]:
    """No zero-length words: the alignment gives start == end to a token squeezed between two others
    (a "%" after "5", a short word in fast speech). Such a word gets one alignment step from the gap after
    it, or before it; with no gap, from the next (or previous) word if that one is long enough to spare it;
    only between two words too short for that is it merged into the word before it (or after it)."""
    out: list[Word] = []
    for number, word in enumerate(words):
        if word.end - word.start >= MIN_WORD_S:
            out.append(word)
            continue
        following = words[number + 1].start if number + 1 < len(words) else max(segment_end, word.start)
        previous = out[-1].end if out else 0.0
        end = round(min(word.start + MIN_WORD_S, max(following, word.end)), 3)
        start = round(max(previous, min(word.start, end - MIN_WORD_S)), 3)
        after = words[number + 1] if number + 1 < len(words) else None
        if end - start >= MIN_WORD_S - 1e-9:
            out.append(Word(start, end, word.word, word.confidence))
        elif after is not None and after.end - after.start >= 2 * MIN_WORD_S:  # take a step from the next
            step = round(word.start + MIN_WORD_S, 3)
            out.append(Word(word.start, step, word.word, word.confidence))
            words[number + 1] = Word(step, after.end, after.word, after.confidence)
        elif out and out[-1].end - out[-1].start >= 2 * MIN_WORD_S:  # or from the one before
            before = out.pop()
            step = round(before.end - MIN_WORD_S, 3)
            out += [Word(before.start, step, before.word, before.confidence), Word(step, before.end, word.word,
                                                                                 word.confidence)]  # fmt: skip
        elif out:  # no room: one word with the one before
            before = out.pop()
            out.append(Word(before.start, max(before.end, word.end), before.word + word.word,
                            min(before.confidence, word.confidence)))  # fmt: skip
        else:  # the first word, with no room before it: it joins the next one
            words[number + 1] = Word(word.start, words[number + 1].end, word.word + words[number + 1].word,
                                     min(word.confidence, words[number + 1].confidence))  # fmt: skip
    return tuple(out)


def to_segment(seg: Any) -> Segment:
    """A faster-whisper Segment as ours."""
    words = with_duration(
        [
            Word(round(w.start, 3), round(w.end, 3), w.word, round(float(w.probability), 4))
            for w in seg.words or ()
        ],
        round(seg.end, 3),
    )
    return Segment(
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


def transcribe_with(
    whisper: Any, audio: npt.NDArray[np.float32], options: TranscribeOptions, multilingual: bool,
    on_progress: ProgressFn,
) -> ChannelTranscript:  # fmt: skip
    """`WhisperModel.transcribe` with a job's options, as our transcript (the lockstep decoder passes a
    WhisperModel whose network calls are batched)."""
    kwargs: dict[str, Any] = {}
    if options.temperature is not None:
        kwargs["temperature"] = options.temperature
    segments, info = whisper.transcribe(
        audio,
        language=options.language if multilingual else "en",
        task=options.task if multilingual else "transcribe",
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
        result.segments.append(to_segment(seg))
        on_progress(float(seg.end))
    return result


class WhisperEngine:
    """faster-whisper's WhisperModel: one model, loaded once, shared by every job. Each channel is decoded
    on its own, window after window, each window conditioned on the text before it."""

    def __init__(self, name: str, model: Any) -> None:
        self.name = name
        self.model = model
        self.multilingual = bool(model.model.is_multilingual)

    def transcribe(
        self, audio: npt.NDArray[np.float32], options: TranscribeOptions, on_progress: ProgressFn
    ) -> ChannelTranscript:
        return transcribe_with(self.model, audio, options, self.multilingual, on_progress)

    def close(self) -> None:
        # drop the reference so that the CTranslate2 model and its worker threads are freed here, not during
        # interpreter exit, where C++ aborts ("terminate called without an active exception")
        self.model = None
