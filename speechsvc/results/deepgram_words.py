"""The words of a Deepgram channel and what Deepgram's options do to them: `replace` (find:replace),
`profanity_filter` (masked), `search` (hits with a confidence, from the word timings)."""

from __future__ import annotations

import dataclasses
import difflib
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PUNCTUATION = string.punctuation + "¿¡“”‘’«»…–—"
SEARCH_MIN_CONFIDENCE = 0.6  # a window less like the query than this is no hit
SEARCH_MAX_HITS = 20  # per query and channel, the best first
# Common English profanity, masked as Deepgram's filter does (first letter kept, the rest asterisks). A
# short list on purpose: it is a filter for display, not a content classifier.
PROFANITY = frozenset(
    [
        "fuck",
        "fucking",
        "fucked",
        "fucker",
        "motherfucker",
        "shit",
        "shitty",
        "bullshit",
        "bitch",
        "bastard",
        "asshole",
        "dick",
        "cunt",
        "piss",
        "pissed",
        "crap",
        "damn",
        "goddamn",
        "wanker",
        "bollocks",
        "twat",
    ]
)


@dataclass(frozen=True)
class DgWord:
    """One word as Deepgram shows it: `word` bare and lower-case, `punctuated` as spoken and written."""

    word: str
    punctuated: str
    start: float
    end: float
    confidence: float
    channel: int  # the canonical channel it came from (several merge into one without multichannel)
    speaker: int | None = None

    @property
    def voice(self) -> tuple[int, int | None]:
        """Who speaks it: a change of voice ends a paragraph or an utterance."""
        return self.channel, self.speaker

    def to_json(self, *, with_speaker: bool) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "word": self.word,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "confidence": round(self.confidence, 4),
            "punctuated_word": self.punctuated,
        }
        if with_speaker and self.speaker is not None:
            fields["speaker"] = self.speaker
        return fields


def bare(text: str) -> str:
    """A word as Deepgram's `word`: lower case, no punctuation around it ("Americans," -> "americans")."""
    return text.strip().strip(PUNCTUATION).lower()


def _terms(text: str) -> list[str]:
    return [term for term in (bare(part) for part in text.split()) if term]


def _trailing(text: str) -> str:
    core = text.rstrip(PUNCTUATION)
    return text[len(core) :]


def replace_words(words: Sequence[DgWord], pairs: Sequence[tuple[str, str]]) -> list[DgWord]:
    """Each `find` (one or more words, any case) becomes `replacement`, one word spanning the words it
    replaces; an empty replacement removes them."""
    rules = [(_terms(find), replacement.strip()) for find, replacement in pairs]
    rules = [(terms, replacement) for terms, replacement in rules if terms]
    out: list[DgWord] = []
    index = 0
    while index < len(words):
        for terms, replacement in rules:
            window = words[index : index + len(terms)]
            if [w.word for w in window] == terms:
                if replacement:
                    first, last = window[0], window[-1]
                    out.append(dataclasses.replace(
                        first, word=bare(replacement) or replacement.lower(),
                        punctuated=replacement + _trailing(last.punctuated), end=last.end,
                        confidence=min(w.confidence for w in window),
                    ))  # fmt: skip
                index += len(terms)
                break
        else:
            out.append(words[index])
            index += 1
    return out


def _mask(text: str) -> str:
    return text[:1] + "*" * (len(text) - 1)


def filter_profanity(words: Sequence[DgWord]) -> list[DgWord]:
    """Profane words masked: "shit." -> "s***." (punctuation kept)."""
    out = []
    for word in words:
        if word.word in PROFANITY:
            core = word.punctuated.strip(PUNCTUATION)
            lead = word.punctuated[: word.punctuated.find(core)] if core else ""
            word = dataclasses.replace(
                word, word=_mask(word.word), punctuated=lead + _mask(core) + _trailing(word.punctuated)
            )
        out.append(word)
    return out


def search(words: Sequence[DgWord], queries: Sequence[str]) -> list[dict[str, Any]]:
    """Deepgram's `search`: for each query, the runs of as many words as it has that read most like it
    (difflib's similarity of the bare text as `confidence`), with their times and the words as `snippet`."""
    found = []
    for query in queries:
        terms = _terms(query)
        hits: list[dict[str, Any]] = []
        if terms:
            target = " ".join(terms)
            for index in range(len(words) - len(terms) + 1):
                window = words[index : index + len(terms)]
                score = difflib.SequenceMatcher(None, target, " ".join(w.word for w in window)).ratio()
                if score >= SEARCH_MIN_CONFIDENCE:
                    hits.append({
                        "confidence": round(score, 4), "start": round(window[0].start, 3),
                        "end": round(window[-1].end, 3), "snippet": " ".join(w.word for w in window),
                    })  # fmt: skip
        hits.sort(key=lambda hit: (-hit["confidence"], hit["start"]))
        found.append({"query": query, "hits": hits[:SEARCH_MAX_HITS]})
    return found
