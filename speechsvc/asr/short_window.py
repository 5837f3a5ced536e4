"""A short clip decoded in a short encoder window. Whisper reads 30 s windows, and the encoder's cost is
the window's, however little of it holds speech; CTranslate2 takes any length, so a clip of a few seconds
is encoded in a window of its length plus WINDOW_MARGIN_S, in steps of WINDOW_STEP_S (a third of the cost
of a 30 s window for a 5 s clip). Used by the live finals and interims (speechsvc.live.decoder) and by
redaction's second listen (speechsvc.redact.second_pass, through the pipeline).

With the lockstep decoder the clip's model calls go to the batcher under the caller's job key (a `live:`
key goes first: LockstepBatcher); with the sequential decoder (--batch-size 1) the clip is a call of its
own beside the jobs' calls.

Measured for live finals (benchmarks/bench_live_finals.py, tiny.en, 2 loaded cores): decode p50 0.28 s in
the short window against 1.30 s in a 30 s one, the same words on JFK and the stereo corpus file; with a
prompt, the short window made tiny.en add "Thank you." and loop; a margin of 1 s in steps of 2 s looped
on a line ("So can you cancel…" x 8)."""

from __future__ import annotations

import math
import threading
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
from speechsvc.asr.lockstep_channels import LockstepWhisperEngine, Preparing, channel_whisper

WINDOW_MARGIN_S = 5.0
WINDOW_STEP_S = 10.0
FULL_WINDOW_FRAMES = 3000  # 30 s of 10 ms feature frames
# the most tokens a window's text may take, per second of the window (fast speech is 3-4 words a second,
# a token or two each, and two timestamps a segment): a decode that loops ("2 or 3 days. . . . . ") stops
# there instead of at the model's 448 tokens, which cost a greedy decode without fallback up to 4x
TOKENS_PER_S = 8


def decode_short(
    engine: Transcriber,
    job_key: str,
    channel: int,
    audio: npt.NDArray[np.float32],
    options: TranscribeOptions,
    frames: int | None = None,
) -> ChannelTranscript:
    """One clip (blocking: run it on a thread of its own), encoded in `frames` feature frames (default:
    window_frames of its length)."""
    if frames is None:
        frames = window_frames(len(audio) / SAMPLE_RATE_HZ)
    if isinstance(engine, LockstepWhisperEngine) and engine.batcher is not None:
        # a preparation slot of its own: a clip never waits for a file job's VAD in the engine's slots
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


def window_frames(duration_s: float, margin_s: float = WINDOW_MARGIN_S, step_s: float = WINDOW_STEP_S) -> int:
    """The encoder window for a clip this long, in feature frames: the clip and `margin_s`, in steps of
    `step_s`."""
    steps = math.ceil((duration_s + margin_s) / step_s)
    return min(FULL_WINDOW_FRAMES, int(steps * step_s * 100))


class ShortWindow:
    """The model faster-whisper calls, with the padded 30 s window cut to `frames` before it is encoded, and
    the text it writes in it bounded by the window's length (TOKENS_PER_S)."""

    def __init__(self, model: Any, frames: int) -> None:
        self._model = model
        self._frames = frames

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def encode(self, features: Any, to_cpu: bool = False) -> Any:
        import ctranslate2

        window = np.ascontiguousarray(np.array(features)[:, :, : self._frames])
        return self._model.encode(ctranslate2.StorageView.from_array(window), to_cpu=to_cpu)

    def generate(self, encoder_output: Any, prompts: list[list[int]], **kwargs: Any) -> Any:
        most = max(len(p) for p in prompts) + math.ceil(self._frames / 100 * TOKENS_PER_S)
        kwargs["max_length"] = min(kwargs.get("max_length", most), most)
        return self._model.generate(encoder_output, prompts, **kwargs)


def _ignore(_: float) -> None:
    return None
