"""A live utterance decoded by the engine the file jobs use. With the lockstep decoder its model calls go to
the batcher under a `live:` job key, which the runners take first (LockstepBatcher): a queued file job
delays a live final by one batch at most. With the sequential decoder (--batch-size 1) the utterance is a
call of its own beside the jobs' calls."""

from __future__ import annotations

import math
import threading
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from speechsvc.asr.engine import (
    SAMPLE_RATE_HZ,
    ChannelTranscript,
    TranscribeOptions,
    Transcriber,
    WhisperEngine,
    transcribe_with,
)
from speechsvc.asr.lockstep import LIVE_PREFIX, LockstepWhisperEngine, Preparing, channel_whisper

PROMPT_CHARS = 400  # of the channel's earlier finals, as the decoder's prompt (Whisper keeps ~220 tokens)
# interims: greedy, no fallback, no alignment (their words are timed evenly); finals: the jobs' settings
INTERIM = TranscribeOptions(beam_size=1, temperature=0.0, word_timestamps=False, vad=False)
FINAL = TranscribeOptions(vad=False)  # the file jobs' settings: beam 5, alignment, temperature fallback
AFTER_SPEECH_S = 0.1  # a segment that starts this close to the utterance's end is in its padding: dropped
# Whisper encodes 30 s windows; an interim is encoded in a shorter one (CTranslate2 takes any length), 2-3
# times faster on the CPU. Measured on the dialogue fixtures with tiny.en: the utterance plus 5 s, in steps
# of 10 s, read as well as 30 s without a prompt (summed WER 1.42 vs 1.38 over 12 lines); plus 1 s in steps
# of 2 s looped on one line ("So can you cancel…" x 8). With the earlier finals as the prompt the short
# window added "Thank you." after the speech, and looped without the temperature fallback: finals keep
# the full window.
WINDOW_MARGIN_S = 5.0
WINDOW_STEP_S = 10.0
FULL_WINDOW_FRAMES = 3000  # 30 s of 10 ms feature frames


def decode_utterance(
    engine: Transcriber,
    stream_key: str,
    channel: int,
    audio: npt.NDArray[np.float32],
    options: TranscribeOptions,
    interim: bool = False,
) -> ChannelTranscript:
    """One utterance (blocking: run it on a thread). `options` carry the language, hotwords and prompt;
    an interim is encoded in a short window."""
    frames = window_frames(len(audio) / SAMPLE_RATE_HZ) if interim else FULL_WINDOW_FRAMES
    transcript = _decode(engine, stream_key, channel, audio, options, frames)
    end_s = len(audio) / SAMPLE_RATE_HZ - AFTER_SPEECH_S
    transcript.segments = [seg for seg in transcript.segments if seg.start < end_s]
    return transcript


def _decode(
    engine: Transcriber,
    stream_key: str,
    channel: int,
    audio: npt.NDArray[np.float32],
    options: TranscribeOptions,
    frames: int,
) -> ChannelTranscript:
    if isinstance(engine, LockstepWhisperEngine) and engine.batcher is not None:
        job_key = LIVE_PREFIX + stream_key
        # a slot of its own: live audio never waits for a file job's VAD in the engine's preparation slots
        with Preparing(threading.Semaphore(1), engine.batcher, job_key) as preparing:
            whisper = channel_whisper(
                engine.model, engine.batcher, f"{job_key}/{channel}", job_key, preparing
            )
            whisper.model = ShortWindow(whisper.model, frames)
            return transcribe_with(whisper, audio, options, engine.multilingual, _ignore)
    if isinstance(engine, WhisperEngine) and engine.model is not None:
        from faster_whisper import WhisperModel

        whisper = WhisperModel.__new__(WhisperModel)
        whisper.__dict__.update(engine.model.__dict__)
        whisper.model = ShortWindow(engine.model.model, frames)
        return transcribe_with(whisper, audio, options, engine.multilingual, _ignore)
    return engine.transcribe(audio, options, _ignore)


def window_frames(duration_s: float) -> int:
    """The encoder window for an utterance this long, in feature frames."""
    steps = math.ceil((duration_s + WINDOW_MARGIN_S) / WINDOW_STEP_S)
    return min(FULL_WINDOW_FRAMES, int(steps * WINDOW_STEP_S * 100))


class ShortWindow:
    """The model faster-whisper calls, with the padded 30 s window cut to `frames` before it is encoded."""

    def __init__(self, model: Any, frames: int) -> None:
        self._model = model
        self._frames = frames

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def encode(self, features: Any, to_cpu: bool = False) -> Any:
        import ctranslate2

        window = np.ascontiguousarray(np.array(features)[:, :, : self._frames])
        return self._model.encode(ctranslate2.StorageView.from_array(window), to_cpu=to_cpu)


def options_for(base: TranscribeOptions, interim: bool, earlier: str) -> TranscribeOptions:
    """The decoder settings of a final or an interim, prompted with the channel's earlier finals."""
    kind = INTERIM if interim else FINAL
    prompt = earlier[-PROMPT_CHARS:].strip() or None
    return replace(kind, language=base.language, hotwords=base.hotwords, prompt=prompt)


def _ignore(_: float) -> None:
    return None
