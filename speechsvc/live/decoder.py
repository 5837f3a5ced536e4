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
from speechsvc.asr.lockstep import LIVE_PREFIX
from speechsvc.asr.lockstep_channels import LockstepWhisperEngine, Preparing, channel_whisper

# interims: greedy, no fallback, no alignment (their words are timed evenly); finals: the jobs' settings
INTERIM = TranscribeOptions(beam_size=1, temperature=0.0, word_timestamps=False, vad=False)
FINAL = TranscribeOptions(vad=False)  # the file jobs' settings: beam 5, alignment, temperature fallback
AFTER_SPEECH_S = 0.1  # a segment that starts this close to the utterance's end is in its padding: dropped
# Whisper encodes 30 s windows; an utterance is encoded in a shorter one (CTranslate2 takes any length): the
# utterance plus 5 s, in steps of 10 s. No prompt: the channel's earlier finals as the prompt made tiny.en
# worse, not better. Measured with benchmarks/bench_live_finals.py (29 utterances the endpointer cut from
# JFK, the stereo corpus file and a dialogue call; tiny.en, 2 loaded cores), decode p50 and dialogue WER:
# 30 s window with the prompt 1.47 s, 0.254; 30 s without 1.30 s, 0.097; short window with the prompt
# 0.51 s, 1.625 (it adds "Thank you." and loops); short without 0.28 s, 0.128 (JFK and stereo as the
# 30 s window). Plus 1 s in steps of 2 s looped on a line ("So can you cancel…" x 8).
WINDOW_MARGIN_S = 5.0
WINDOW_STEP_S = 10.0
FULL_WINDOW_FRAMES = 3000  # 30 s of 10 ms feature frames


def decode_utterance(
    engine: Transcriber,
    stream_key: str,
    channel: int,
    audio: npt.NDArray[np.float32],
    options: TranscribeOptions,
    frames: int | None = None,
) -> ChannelTranscript:
    """One utterance (blocking: run it on a thread), encoded in `frames` feature frames (default: its
    short window). `options` carry the language and hotwords."""
    if frames is None:
        frames = window_frames(len(audio) / SAMPLE_RATE_HZ)
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


def options_for(base: TranscribeOptions, interim: bool) -> TranscribeOptions:
    """The decoder settings of a final or an interim, with the stream's language and hotwords."""
    return replace(INTERIM if interim else FINAL, language=base.language, hotwords=base.hotwords)


def _ignore(_: float) -> None:
    return None
