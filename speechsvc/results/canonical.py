"""The canonical result document (API.md §2): channels, merged timeline, text and talk-time stats."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from speechsvc.asr.engine import ChannelTranscript
from speechsvc.audio.layout import SelectedChannel

Result = dict[str, Any]


def build_result(
    request_id: str,
    model: str,
    channels: Sequence[tuple[SelectedChannel, ChannelTranscript]],
    crosstalk: dict[str, Any] | None = None,
) -> Result:
    """Assemble the canonical result from each selected channel's transcript (and, for several channels,
    what cross-talk suppression found and did)."""
    channel_docs = [
        {
            "stream": selected.ref.stream,
            "channel": selected.ref.channel,
            "label": selected.label,
            "language": transcript.language,
            "language_probability": transcript.language_probability,
            "duration_s": transcript.duration_s,
            "speech_s": transcript.speech_s,
            "segments": [
                {
                    "start": seg.start,
                    "end": seg.end,
                    "text": seg.text.strip(),
                    "words": [asdict(word) for word in seg.words],
                    "avg_logprob": seg.avg_logprob,
                    "compression_ratio": seg.compression_ratio,
                    "no_speech_prob": seg.no_speech_prob,
                    "temperature": seg.temperature,
                    "tokens": list(seg.tokens),
                    "seek": seg.seek,
                }
                for seg in transcript.segments
            ],
        }
        for selected, transcript in channels
    ]
    timeline = merge_timeline(channel_docs)
    return {
        "request_id": request_id,
        "status": "Completed",
        "model": model,
        "duration_s": max((transcript.duration_s for _, transcript in channels), default=0.0),
        "channels": channel_docs,
        "timeline": timeline,
        "text": timeline_text(timeline, multi=len(channel_docs) > 1),
        "stats": talk_stats(channel_docs),
        **({"crosstalk": crosstalk} if crosstalk is not None else {}),
    }


def merge_timeline(channel_docs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every channel's segments in time order: the conversation as it happened."""
    entries = [
        {
            "start": seg["start"],
            "end": seg["end"],
            "label": doc["label"],
            "stream": doc["stream"],
            "channel": doc["channel"],
            "text": seg["text"],
        }
        for doc in channel_docs
        for seg in doc["segments"]
    ]
    entries.sort(key=lambda e: (e["start"], e["end"], e["stream"], e["channel"]))
    return entries


def timeline_text(timeline: Sequence[dict[str, Any]], *, multi: bool) -> str:
    if multi:
        return "\n".join(f"{e['label']}: {e['text']}" for e in timeline if e["text"])
    return " ".join(e["text"] for e in timeline if e["text"])


def _union(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def talk_stats(channel_docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Talk time per label (union of its segments) and the time two or more channels talk at once."""
    talk: dict[str, float] = {}
    events: list[tuple[float, int]] = []
    for doc in channel_docs:
        spans = _union([(s["start"], s["end"]) for s in doc["segments"] if s["end"] > s["start"]])
        talk[doc["label"]] = round(sum(end - start for start, end in spans), 3)
        for start, end in spans:
            events += [(start, 1), (end, -1)]
    overlap, active, last = 0.0, 0, 0.0
    for time, delta in sorted(events):
        if active >= 2:
            overlap += time - last
        active += delta
        last = time
    return {"talk_time_s": talk, "overlap_s": round(overlap, 3)}
