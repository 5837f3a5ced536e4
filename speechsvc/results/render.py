"""Render the canonical result as json, xml (AppTek's shape), srt, vtt, txt or html (results/html.py)."""

from __future__ import annotations

import json
import textwrap
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from speechsvc.results.canonical import Result, speaker_name
from speechsvc.results.formats import FormatSpec
from speechsvc.results.html import render_html


def render(result: Result, spec: FormatSpec) -> str:
    """The result as text in the format `spec` names."""
    if spec.name == "json":
        return json.dumps(result, ensure_ascii=False, indent=2) + "\n"
    if spec.name == "xml":
        return render_xml(result)
    if spec.name == "txt":
        return result["text"] + "\n" if result["text"] else ""
    if spec.name == "html":
        return render_html(result)
    return render_subtitles(result, spec)


# --- XML ---------------------------------------------------------------------------------------


def _is_punct(char: str) -> bool:
    return unicodedata.category(char).startswith("P")


def _split_punctuation(word: str) -> tuple[str, str, str]:
    """Leading punctuation, the word, trailing punctuation ("country." -> "", "country", ".")."""
    text = word.strip()
    lead = 0
    while lead < len(text) and _is_punct(text[lead]):
        lead += 1
    trail = len(text)
    while trail > lead and _is_punct(text[trail - 1]):
        trail -= 1
    return text[:lead], text[lead:trail], text[trail:]


def _item(parent: ET.Element, kind: str, orth: str, start: float, end: float, confidence: float) -> None:
    item = ET.SubElement(parent, "item", type=kind)
    ET.SubElement(item, "orth").text = orth
    ET.SubElement(item, "samples", start=f"{start:.3f}", end=f"{end:.3f}")
    ET.SubElement(item, "confidence").text = f"{confidence:.3f}"


def _segment_words(seg: dict[str, Any]) -> list[dict[str, Any]]:
    if seg["words"]:
        return list(seg["words"])
    return [
        {"start": seg["start"], "end": seg["end"], "word": token, "confidence": 1.0}
        for token in seg["text"].split()
    ]


def render_xml(result: Result) -> str:
    root = ET.Element(
        "recording",
        request_id=str(result["request_id"]),
        model=str(result["model"]),
        duration=f"{result['duration_s']:.3f}",
    )
    multi = len(result["channels"]) > 1
    segments = [(doc, seg) for doc in result["channels"] for seg in doc["segments"]]
    segments.sort(key=lambda pair: (pair[1]["start"], pair[0]["stream"], pair[0]["channel"]))
    for number, (doc, seg) in enumerate(segments, start=1):
        element = ET.SubElement(
            root,
            "segment",
            name=str(number),
            start=f"{seg['start']:.3f}",
            end=f"{seg['end']:.3f}",
            speaker=speaker_name(doc, seg, multi=multi) or str(doc["label"]),  # diarized: the speaker id
            stream=str(doc["stream"]),
            channel=str(doc["channel"]),
        )
        traceback = ET.SubElement(element, "traceback")
        for word in _segment_words(seg):
            if "redacted" in word:  # a redaction marker is one item, brackets or stars and all
                _item(traceback, "pronunciation", word["word"].strip(), word["start"], word["end"], 1.0)
                continue
            lead, core, trail = _split_punctuation(word["word"])
            for kind, orth, at_start in (
                ("punctuation", lead, True),
                ("pronunciation", core, None),
                ("punctuation", trail, False),
            ):
                if not orth:
                    continue
                start = word["start"] if at_start in (True, None) else word["end"]
                end = word["end"] if at_start in (False, None) else word["start"]
                _item(traceback, kind, orth, start, end, word["confidence"])
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# --- SRT / VTT ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: tuple[str, ...]
    speaker: str | None


def _timestamp(seconds: float, separator: str) -> str:
    millis = round(max(seconds, 0.0) * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _wrap(text: str, limit: int | None) -> list[str]:
    return textwrap.wrap(text, limit, break_long_words=True) if limit else [text]


def _fits(text: str, spec: FormatSpec) -> bool:
    return spec.max_lines is None or len(_wrap(text, spec.line_char_limit)) <= spec.max_lines


def _split_by_words(
    words: list[dict[str, Any]], tag: str, spec: FormatSpec
) -> Iterator[tuple[float, float, str]]:
    """Greedy: as many words per cue as fit in max_lines lines of line_char_limit characters."""
    group: list[dict[str, Any]] = []

    def text_of(words: list[dict[str, Any]]) -> str:
        return tag + "".join(w["word"] for w in words).strip()

    for word in words:
        if group and not _fits(text_of([*group, word]), spec):
            yield group[0]["start"], group[-1]["end"], text_of(group)
            group = []
        group.append(word)
    if group:
        yield group[0]["start"], group[-1]["end"], text_of(group)


def _timed_words(seg: dict[str, Any]) -> list[dict[str, Any]]:
    """The segment's words; without word times, its tokens timed in proportion to their characters."""
    if seg["words"]:
        return list(seg["words"])
    tokens = seg["text"].split()
    total = sum(len(token) for token in tokens) or 1
    start, span = seg["start"], seg["end"] - seg["start"]
    words = []
    for token in tokens:
        end = start + span * len(token) / total
        words.append({"start": start, "end": end, "word": " " + token, "confidence": 1.0})
        start = end
    return words


def subtitle_cues(result: Result, spec: FormatSpec) -> list[Cue]:
    """The timeline as cues, split so that none has more than max_lines lines of line_char_limit.

    With several channels, or with diarization, each cue names its speaker: `[agent] ` or `[spk_0] ` in SRT
    (visible text, so it counts toward the line limit) and a `<v agent>` voice tag in VTT (markup, so it
    does not).
    """
    multi = len(result["channels"]) > 1
    cues: list[Cue] = []
    for doc in result["channels"]:
        for seg in doc["segments"]:
            if not seg["text"]:
                continue
            speaker = speaker_name(doc, seg, multi=multi)
            tag = f"[{speaker}] " if speaker is not None and spec.name == "srt" else ""
            if _fits(tag + seg["text"], spec):
                pieces: Iterator[tuple[float, float, str]] = iter(
                    [(seg["start"], seg["end"], tag + seg["text"])]
                )
            else:
                pieces = _split_by_words(_timed_words(seg), tag, spec)
            for start, end, text in pieces:
                cues.append(Cue(start, end, tuple(_wrap(text, spec.line_char_limit)), speaker))
    cues.sort(key=lambda cue: (cue.start, cue.end))
    return cues


def render_subtitles(result: Result, spec: FormatSpec) -> str:
    vtt = spec.name == "vtt"
    blocks: list[str] = ["WEBVTT\n"] if vtt else []
    for number, cue in enumerate(subtitle_cues(result, spec), start=1):
        lines = list(cue.lines)
        if vtt and cue.speaker is not None:
            lines[0] = f"<v {cue.speaker}>{lines[0]}"
        separator = "." if vtt else ","
        timing = f"{_timestamp(cue.start, separator)} --> {_timestamp(cue.end, separator)}"
        header = [timing] if vtt else [str(number), timing]
        blocks.append("\n".join([*header, *lines]) + "\n")
    return "\n".join(blocks)
