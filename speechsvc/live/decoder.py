"""A live utterance decoded by the engine the file jobs use. With the lockstep decoder its model calls go to
the batcher under a `live:` job key, which the runners take first (LockstepBatcher): a queued file job
delays a live final by one batch at most. With the sequential decoder (--batch-size 1) the utterance is a
call of its own beside the jobs' calls."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from speechsvc.asr.engine import SAMPLE_RATE_HZ, ChannelTranscript, TranscribeOptions, Transcriber
from speechsvc.asr.lockstep import LIVE_PREFIX
from speechsvc.asr.short_window import decode_short

# interims: greedy, no fallback, no alignment (their words are timed evenly); finals: the jobs' settings
INTERIM = TranscribeOptions(beam_size=1, temperature=0.0, word_timestamps=False, vad=False)
FINAL = TranscribeOptions(vad=False)  # the file jobs' settings: beam 5, alignment, temperature fallback
AFTER_SPEECH_S = 0.1  # a segment that starts this close to the utterance's end is in its padding: dropped


def decode_utterance(
    engine: Transcriber,
    stream_key: str,
    channel: int,
    audio: npt.NDArray[np.float32],
    options: TranscribeOptions,
    frames: int | None = None,
) -> ChannelTranscript:
    """One utterance (blocking: run it on a thread), encoded in `frames` feature frames (default: its
    short window, speechsvc.asr.short_window). `options` carry the language and hotwords. No prompt: the
    channel's earlier finals as the prompt made tiny.en worse, not better (benchmarks/bench_live_finals.py,
    29 utterances the endpointer cut from JFK, the stereo corpus file and a dialogue call; tiny.en, 2
    loaded cores; decode p50 and dialogue WER: 30 s window with the prompt 1.47 s, 0.254; 30 s without
    1.30 s, 0.097; short window with the prompt 0.51 s, 1.625; short without 0.28 s, 0.128)."""
    transcript = decode_short(engine, LIVE_PREFIX + stream_key, channel, audio, options, frames)
    end_s = len(audio) / SAMPLE_RATE_HZ - AFTER_SPEECH_S
    transcript.segments = [seg for seg in transcript.segments if seg.start < end_s]
    return transcript


def options_for(base: TranscribeOptions, interim: bool) -> TranscribeOptions:
    """The decoder settings of a final or an interim, with the stream's language and hotwords."""
    return replace(INTERIM if interim else FINAL, language=base.language, hotwords=base.hotwords)
