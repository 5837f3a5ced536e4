"""Deepgram's live messages (the official deepgram-sdk's ListenV1Results, ListenV1Metadata,
ListenV1SpeechStarted, ListenV1UtteranceEnd, ListenV1Error), from an utterance's transcript."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from speechsvc.asr.engine import ChannelTranscript, Segment
from speechsvc.results.deepgram import _iso, model_uuid
from speechsvc.results.deepgram_words import DgWord, bare, filter_profanity, replace_words
from speechsvc.results.render import _timed_words


@dataclass(frozen=True)
class LiveShape:
    """What shapes the messages of one stream."""

    request_id: str
    model: str
    channels: int  # n of channel_index [c, n]: 1 unless multichannel
    punctuate: bool = False
    profanity_filter: bool = False
    replace: tuple[tuple[str, str], ...] = ()
    diarize: bool = False  # words carry their speaker

    def channel_index(self, channel: int) -> list[int]:
        return [channel if self.channels > 1 else 0, self.channels]

    @property
    def model_info(self) -> dict[str, Any]:
        return {"name": self.model, "version": "speechsvc", "arch": "whisper"}


def _segment_dict(seg: Segment, offset_s: float) -> dict[str, Any]:
    words = [{"start": w.start + offset_s, "end": w.end + offset_s, "word": w.word, "confidence": w.confidence}
             for w in seg.words]  # fmt: skip
    return {"start": seg.start + offset_s, "end": seg.end + offset_s, "text": seg.text, "words": words}


def live_words(
    transcript: ChannelTranscript | None, offset_s: float, duration_s: float, shape: LiveShape, channel: int
) -> list[DgWord]:
    """The utterance's words on the stream's timeline, inside its audio (an interim's, without alignment,
    timed evenly)."""
    end_s = offset_s + duration_s
    words: list[DgWord] = []
    for seg in transcript.segments if transcript is not None else ():
        for word in _timed_words(_segment_dict(seg, offset_s)):
            text = word["word"].strip()
            if text:
                start, end = (min(max(float(word[name]), offset_s), end_s) for name in ("start", "end"))
                words.append(
                    DgWord(bare(text) or text.lower(), text, start, end, float(word["confidence"]), channel)
                )
    if shape.replace:
        words = replace_words(words, shape.replace)
    return filter_profanity(words) if shape.profanity_filter else words


def results_message(
    shape: LiveShape, channel: int, start_s: float, duration_s: float, words: list[DgWord], *,
    is_final: bool, speech_final: bool, from_finalize: bool,
) -> dict[str, Any]:  # fmt: skip
    transcript = " ".join(w.punctuated if shape.punctuate else w.word for w in words)
    confidence = round(sum(w.confidence for w in words) / len(words), 4) if words else 0.0
    return {
        "type": "Results",
        "channel_index": shape.channel_index(channel),
        "duration": round(duration_s, 3),
        "start": round(start_s, 3),
        "is_final": is_final,
        "speech_final": speech_final,
        "from_finalize": from_finalize,
        "channel": {"alternatives": [{"transcript": transcript, "confidence": confidence,
                                      "words": [w.to_json(with_speaker=shape.diarize) for w in words]}]},
        "metadata": {"request_id": shape.request_id, "model_info": shape.model_info,
                     "model_uuid": model_uuid(shape.model)},
    }  # fmt: skip


def speech_started(shape: LiveShape, channel: int, at_s: float) -> dict[str, Any]:
    return {"type": "SpeechStarted", "channel": shape.channel_index(channel), "timestamp": round(at_s, 3)}


def utterance_end(shape: LiveShape, channel: int, last_word_end: float) -> dict[str, Any]:
    return {"type": "UtteranceEnd", "channel": shape.channel_index(channel),
            "last_word_end": round(last_word_end, 3)}  # fmt: skip


def metadata_message(
    shape: LiveShape, sha256: str, duration_s: float, channels: int, created_at: float | None = None
) -> dict[str, Any]:
    uid = model_uuid(shape.model)
    return {
        "type": "Metadata", "transaction_key": "deprecated", "request_id": shape.request_id, "sha256": sha256,
        "created": _iso(created_at if created_at is not None else time.time()), "duration": round(duration_s, 3),
        "channels": channels, "models": [uid], "model_info": {uid: shape.model_info},
    }  # fmt: skip


def error_message(code: str, description: str) -> dict[str, Any]:
    return {"type": "Error", "variant": code, "description": description, "code": code}
