"""Redact a canonical result (API.md §2) in place of its values: each span found in a channel's words
becomes one word, the marker (or the mask), timed from the span's first word to its last; the segments,
the timeline and the text are rebuilt from those words; the talk-time stats stay as they were (counted
from the speech, which did happen). The result lists the spans, `redactions: [{type, channel, …}]`,
never their values, and `not_redacted: [type, …]` the types asked for that this server cannot find
(person names without the `names` extra). Runs before the result is stored, while the words are still
in it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from speechsvc.redact import MARKERS, MASK, Redaction, names
from speechsvc.redact.cues import CUED_DIGITS
from speechsvc.redact.detect import Finding
from speechsvc.redact.reading import Located, Reading
from speechsvc.redact.second_pass import Heard, stands
from speechsvc.redact.spoken import Token, clusters, number_groups
from speechsvc.results.canonical import Result, merge_timeline, timeline_text

_PRECEDENCE = {name: rank for rank, name in enumerate(MARKERS)}
# The most digits the first reading's runs under a second listen's finding may hold for it to stand: a
# phone number's 11 (with the country code) and one misheard, an SSN's and a card's as after a cue
# (speechsvc.redact.cues.CUED_DIGITS). A 16-digit order number that the second reading heard as "74404
# 79666" is not a phone number.
MOST_DIGITS = {"phone_number": 12, "ssn": CUED_DIGITS["ssn"][1], "credit_card": CUED_DIGITS["credit_card"][1]}
_TRAILING = ".,;:!?"


def redact_result(result: Result, reading: Reading, again: Sequence[Heard] = ()) -> Result:
    """The result with every span of the reading's classes replaced; `redactions` lists them. `reading`:
    the result's first reading (speechsvc.redact.reading); `again`: what a second listen found
    (speechsvc.redact.second_pass), laid on the words it overlaps."""
    spans: list[dict[str, Any]] = []
    channels = []
    for position, doc in enumerate(result["channels"]):
        words, first = reading.words[position], reading.found[position]
        second = [h for h in again if h.channel == position]
        merged = merge(first + _laid(second, words, reading.tokens[position], first))
        channels.append({**doc, "segments": _rewrite(doc["segments"], words, merged, reading.redaction)})
        spans += [
            {"type": f.type, "stream": doc["stream"], "channel": doc["channel"], "label": doc["label"],
             "start": words[f.first][2]["start"], "end": words[f.last][2]["end"]}
            for f in merged
        ]  # fmt: skip
    timeline = merge_timeline(channels)
    spans.sort(key=lambda span: (span["start"], span["stream"], span["channel"]))
    redacted = {
        **result,
        "channels": channels,
        "timeline": timeline,
        "text": timeline_text(timeline, multi=len(channels) > 1),
        "redactions": spans,
    }
    if missing := not_looked_for(reading.redaction):
        redacted["not_redacted"] = missing
    return redacted


def not_looked_for(redaction: Redaction) -> list[str]:
    """The entity types the request's classes hold that this server cannot find: person names without
    the `names` extra (speechsvc.redact.names). The result says so rather than seem to have none."""
    if names.ENTITIES & redaction.entities and names.recognizer() is None:
        return sorted(names.ENTITIES & redaction.entities)
    return []


def _laid(
    heard: Sequence[Heard], words: list[Located], toks: Sequence[Token], first: Sequence[Finding]
) -> list[Finding]:
    """Each finding of the second listen as the first reading's words it overlaps in time, each by half
    of the word or of the finding at least (the readings' timings differ a little; none: the first
    reading has no words there, and there is nothing to replace). Where the first reading found
    something already, it stands (second_pass.stands: not a person name; the two spans then merge): a
    digit the second reading dropped turns a phone number into an SSN as often as it mends one. A span
    grows over the first reading's digit runs it touches (the readings end a number at different words:
    no digit of it is left beside the marker), unless they hold more digits than its type can
    (MOST_DIGITS)."""
    runs = [
        (run[0].first, run[-1].last, sum(len(g.digits) for g in run))
        for run in clusters(number_groups(toks), toks)
    ]
    out = []
    for h in heard:
        inside = [
            n
            for n, (_, _, w) in enumerate(words)
            if min(w["end"], h.end_s) - max(w["start"], h.start_s)
            > 0.5 * min(w["end"] - w["start"], h.end_s - h.start_s)
        ]
        if not inside:
            continue
        low, high = inside[0], inside[-1]
        digits = 0
        for a, b, count in runs:
            if a <= high and b >= low:
                low, high = min(low, a), max(high, b)
                digits += count
        if digits > MOST_DIGITS.get(h.type, digits):
            continue  # the second reading dropped digits of a longer number (a 16-digit order number)
        if not any(f.first <= high and f.last >= low for f in first if stands(f)):
            out.append(Finding(h.type, low, high))
    return out


def merge(findings: Sequence[Finding]) -> list[Finding]:
    """Overlapping findings as one span, of the type that comes first in MARKERS."""
    merged: list[Finding] = []
    for f in sorted(findings, key=lambda f: (f.first, -f.last)):
        if merged and f.first <= merged[-1].last:
            last = merged[-1]
            kind = min(last.type, f.type, key=_PRECEDENCE.__getitem__)
            merged[-1] = Finding(kind, last.first, max(last.last, f.last))
        else:
            merged.append(f)
    return merged


def _marker_word(words: list[Located], span: Finding, redaction: Redaction) -> dict[str, Any]:
    first, last = words[span.first][2], words[span.last][2]
    text = MASK if redaction.substitution == "mask" else MARKERS[span.type]
    trail = last["word"].rstrip()[-1:]
    word = {
        "start": first["start"],
        "end": last["end"],
        "word": " " + text + (trail if trail in _TRAILING else ""),
        "confidence": min(w["confidence"] for _, _, w in words[span.first : span.last + 1]),
        "redacted": span.type,
    }
    if "speaker" in first:
        word["speaker"] = first["speaker"]
    return word


def _rewrite(
    segments: list[dict[str, Any]], words: list[Located], spans: list[Finding], redaction: Redaction
) -> list[dict[str, Any]]:
    """Each span's marker in the segment of its first word; its other words leave their segments (a
    segment left without words goes); a touched segment's text is its words, its tokens dropped."""
    if not spans:
        return segments
    replaced: dict[int, dict[str, Any] | None] = {}  # word index -> marker, or None: removed
    for span in spans:
        replaced[span.first] = _marker_word(words, span, redaction)
        replaced.update(dict.fromkeys(range(span.first + 1, span.last + 1)))
    per_segment: dict[int, list[dict[str, Any]]] = {}
    touched = set()
    for index, (number, _, word) in enumerate(words):
        if index in replaced:
            touched.add(number)
            if (marker := replaced[index]) is not None:
                per_segment.setdefault(number, []).append(marker)
        else:
            per_segment.setdefault(number, []).append(word)
    out = []
    for number, seg in enumerate(segments):
        if number not in touched:
            out.append(seg)
            continue
        kept = per_segment.get(number, [])
        if not kept:
            continue
        timed = kept
        out.append({
            **seg,
            "start": min(w["start"] for w in timed),
            "end": max(w["end"] for w in timed),
            "text": "".join(w["word"] for w in timed).strip(),
            "words": timed if seg["words"] else [],
            "tokens": [],
        })  # fmt: skip
    return out
