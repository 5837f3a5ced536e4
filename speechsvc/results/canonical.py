"""The canonical result document (API.md §2): channels, merged timeline, text and talk-time stats."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from speechsvc.asr.engine import ChannelTranscript, Word
from speechsvc.audio.layout import SelectedChannel
from speechsvc.results.turns import PAUSE_S

Result = dict[str, Any]


def build_result(
    request_id: str,
    model: str,
    channels: Sequence[tuple[SelectedChannel, ChannelTranscript]],
    crosstalk: dict[str, Any] | None = None,
) -> Result:
    """Assemble the canonical result from each selected channel's transcript (and, for several channels,
    what cross-talk suppression found and did), words included: `drop_words` takes them out afterwards,
    once the stats are counted and redaction has read them."""
    channel_docs = [
        {
            "stream": selected.ref.stream,
            "channel": selected.ref.channel,
            "label": selected.label,
            "language": transcript.language,
            "language_probability": transcript.language_probability,
            "duration_s": transcript.duration_s,
            "speech_s": transcript.speech_s,
            **(
                {
                    "transcribed_s": transcript.transcribed_s,
                    "gaps": [{"start": start, "end": end} for start, end in transcript.gaps],
                }
                if transcript.transcribed_s is not None
                else {}
            ),
            "segments": [
                {
                    "start": seg.start,
                    "end": seg.end,
                    "text": seg.text.strip(),
                    "words": [_word(word) for word in seg.words],
                    "avg_logprob": seg.avg_logprob,
                    "compression_ratio": seg.compression_ratio,
                    "no_speech_prob": seg.no_speech_prob,
                    "temperature": seg.temperature,
                    "tokens": list(seg.tokens),
                    "seek": seg.seek,
                    **({"speaker": seg.speaker} if seg.speaker is not None else {}),
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
        **(
            {"speakers": speaker_lists(channel_docs)}
            if any(s.get("speaker") for s in _all(channel_docs))
            else {}
        ),
        **({"crosstalk": crosstalk} if crosstalk is not None else {}),
    }


def drop_words(result: Result) -> Result:
    """The result without its words (decoded to time the segments, not asked for by the caller)."""
    for seg in _all(result["channels"]):
        seg["words"] = []
    return result


def _word(word: Word) -> dict[str, Any]:
    fields = asdict(word)
    if fields["speaker"] is None:  # not diarized: the word as it always was
        del fields["speaker"]
    return fields


def _all(channel_docs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [seg for doc in channel_docs for seg in doc["segments"]]


def speaker_name(doc: dict[str, Any], seg: dict[str, Any], *, multi: bool) -> str | None:
    """Who says a segment, as the text formats name them: with diarization the speaker (`spk_0`, or
    `agent/spk_0` when there are several channels), else the channel's label when there are several."""
    speaker = seg.get("speaker")
    if speaker is not None:
        return f"{doc['label']}/{speaker}" if multi else str(speaker)
    return str(doc["label"]) if multi else None


def speaker_lists(channel_docs: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """The speakers found on each diarized channel, by label, in order of first appearance."""
    found: dict[str, list[str]] = {}
    for doc in channel_docs:
        for seg in doc["segments"]:
            if seg.get("speaker") is not None and seg["speaker"] not in found.setdefault(doc["label"], []):
                found[doc["label"]].append(seg["speaker"])
    return found


def merge_timeline(channel_docs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every channel's segments in time order: the conversation as it happened."""
    entries = [
        {
            "start": seg["start"],
            "end": seg["end"],
            "label": doc["label"],
            "stream": doc["stream"],
            "channel": doc["channel"],
            **({"speaker": seg["speaker"]} if seg.get("speaker") is not None else {}),
            "text": seg["text"],
        }
        for doc in channel_docs
        for seg in doc["segments"]
    ]
    entries.sort(key=lambda e: (e["start"], e["end"], e["stream"], e["channel"]))
    return entries


def timeline_text(timeline: Sequence[dict[str, Any]], *, multi: bool) -> str:
    """One line per segment, `who: text`, when there is more than one voice to tell apart; else the words."""
    if multi or any("speaker" in e for e in timeline):
        return "\n".join(f"{speaker_name(e, e, multi=multi)}: {e['text']}" for e in timeline if e["text"])
    return " ".join(e["text"] for e in timeline if e["text"])


def _union(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _spoken(seg: dict[str, Any]) -> list[tuple[float, float]]:
    words = [(w["start"], w["end"]) for w in seg.get("words", ()) if w["end"] > w["start"]]
    if not words:
        return [(seg["start"], seg["end"])] if seg["end"] > seg["start"] else []
    spans = [words[0]]
    for start, end in words[1:]:
        if start - spans[-1][1] < PAUSE_S:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    return spans


def talk_stats(channel_docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Talk time per label, or per speaker on diarized channels (`spk_0`, or `label/spk_0` with several
    channels), and the time two or more of them talk at once: from the words, a pause under PAUSE_S
    bridged (a segment without words counts by its own span)."""
    multi = len(channel_docs) > 1
    voices: dict[str, list[tuple[float, float]]] = {}
    for doc in channel_docs:
        if not doc["segments"]:
            voices.setdefault(str(doc["label"]), [])
        for seg in doc["segments"]:
            name = speaker_name(doc, seg, multi=multi) or str(doc["label"])
            voices.setdefault(name, []).extend(_spoken(seg))
    talk: dict[str, float] = {}
    events: list[tuple[float, int]] = []
    for name, intervals in voices.items():
        spans = _union(intervals)
        talk[name] = round(sum(end - start for start, end in spans), 3)
        for start, end in spans:
            events += [(start, 1), (end, -1)]
    overlap, active, last = 0.0, 0, 0.0
    for time, delta in sorted(events):
        if active >= 2:
            overlap += time - last
        active += delta
        last = time
    return {"talk_time_s": talk, "overlap_s": round(overlap, 3)}
