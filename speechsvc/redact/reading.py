"""The first reading of a result as the detector sees it: each channel's words in order, their tokens,
the cues of every channel (a question on one channel, the answer on another) and what the detector
finds there. Read once per job: the second listen (speechsvc.redact.second_pass) skips what it found and
listens where the cues point; the redaction (speechsvc.redact.apply) replaces it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from speechsvc.redact import Redaction
from speechsvc.redact.cues import Cue, cues_in
from speechsvc.redact.detect import Finding, find
from speechsvc.redact.spoken import Token, tokens

Located = tuple[int, int, dict[str, Any]]  # segment number, word number (-1: read from the text), word


@dataclass(frozen=True)
class Reading:
    """A result's channels (positions as in result["channels"]) as the detector read them."""

    redaction: Redaction
    words: list[list[Located]]
    tokens: list[list[Token]]
    cues: list[Cue]
    found: list[list[Finding]]  # the first reading's findings, per channel, in any order
    languages: list[str]


def read(result: dict[str, Any], redaction: Redaction) -> Reading:
    """The canonical result's (API.md §2) channels read for `redaction`'s entity types."""
    words = [located_words(doc) for doc in result["channels"]]
    heard = [tokens([(w["start"], w["end"], w["word"]) for _, _, w in located]) for located in words]
    cues = [cue for toks in heard for cue in cues_in(toks)]
    return Reading(
        redaction,
        words,
        heard,
        cues,
        [find(toks, redaction.entities, cues) for toks in heard],
        [doc.get("language", "en") for doc in result["channels"]],
    )


def located_words(doc: dict[str, Any]) -> list[Located]:
    """A channel's words in order; a segment without words gives its text's tokens, timed in proportion
    to their characters."""
    out: list[Located] = []
    for number, seg in enumerate(doc["segments"]):
        if seg["words"]:
            out += [(number, position, word) for position, word in enumerate(seg["words"])]
            continue
        tokens_ = seg["text"].split()
        total = sum(len(t) for t in tokens_) or 1
        at = seg["start"]
        for token in tokens_:
            end = at + (seg["end"] - seg["start"]) * len(token) / total
            out.append((number, -1, {"start": at, "end": end, "word": " " + token, "confidence": 1.0}))
            at = end
    return out
