"""A live utterance decoded by the engine the file jobs use. With the lockstep decoder its model calls go to
the batcher under a `live:` job key, which the runners take first (LockstepBatcher): a queued file job
delays a live final by one batch at most. With the sequential decoder (--batch-size 1) the utterance is a
call of its own beside the jobs' calls."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from speechsvc.asr.engine import ChannelTranscript, TranscribeOptions, Transcriber, transcribe_with
from speechsvc.asr.lockstep import LIVE_PREFIX, LockstepWhisperEngine, Preparing, channel_whisper

PROMPT_CHARS = 400  # of the channel's earlier finals, as the decoder's prompt (Whisper keeps ~220 tokens)
# interims: greedy, no fallback, no alignment (their words are timed evenly); finals: the jobs' settings
INTERIM = TranscribeOptions(beam_size=1, temperature=0.0, word_timestamps=False, vad=False)
FINAL = TranscribeOptions(vad=False)


def decode_utterance(
    engine: Transcriber,
    stream_key: str,
    channel: int,
    audio: npt.NDArray[np.float32],
    options: TranscribeOptions,
) -> ChannelTranscript:
    """One utterance (blocking: run it on a thread). `options` carry the language, hotwords and prompt."""
    if isinstance(engine, LockstepWhisperEngine) and engine.batcher is not None:
        job_key = LIVE_PREFIX + stream_key
        # a slot of its own: live audio never waits for a file job's VAD in the engine's preparation slots
        with Preparing(threading.Semaphore(1), engine.batcher, job_key) as preparing:
            whisper = channel_whisper(
                engine.model, engine.batcher, f"{job_key}/{channel}", job_key, preparing
            )
            return transcribe_with(whisper, audio, options, engine.multilingual, _ignore)
    return engine.transcribe(audio, options, _ignore)


def options_for(base: TranscribeOptions, interim: bool, earlier: str) -> TranscribeOptions:
    """The decoder settings of a final or an interim, prompted with the channel's earlier finals."""
    kind = INTERIM if interim else FINAL
    prompt = earlier[-PROMPT_CHARS:].strip() or None
    return replace(kind, language=base.language, hotwords=base.hotwords, prompt=prompt)


def _ignore(_: float) -> None:
    return None
