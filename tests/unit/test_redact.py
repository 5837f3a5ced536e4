"""Redaction on text and word lists: what is found in written and spoken forms, what survives, and how a
result is rewritten (speechsvc.redact)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from speechsvc.errors import InvalidRequest
from speechsvc.redact import Redaction, parse_redaction
from speechsvc.redact.apply import redact_result
from speechsvc.redact.audio import AUDIO_PAD_S, RATE_HZ, redacted_channels
from speechsvc.redact.detect import find, luhn_valid, ssn_valid
from speechsvc.redact.reading import read
from speechsvc.redact.spoken import tokens

CARD = "4539148803436467"


def words(text: str, step_s: float = 0.4) -> list[tuple[float, float, str]]:
    """Words timed one after the other; `|` is a 5 s pause (a turn of the other party)."""
    out, at = [], 0.0
    for word in text.split(" "):
        if word == "|":
            at += 5.0
            continue
        out.append((at, at + step_s * 0.8, " " + word))
        at += step_s
    return out


def found(text: str, classes: str = "pii") -> list[tuple[str, str]]:
    listed = words(text)
    entities = Redaction(tuple(classes.split(","))).entities
    return sorted(
        (f.type, " ".join(w[2].strip() for w in listed[f.first : f.last + 1]))
        for f in find(tokens(listed), entities)
    )


@pytest.mark.parametrize(
    "said",
    [
        "4539 1488 0343 6467",
        "4539148803436467",
        "4539-1488-0343-6467",
        "4,539,148,803,436,467",
        "four five three nine, one four eight eight, oh three four three, six four six seven.",
        "forty-five thirty-nine fourteen eighty-eight zero three forty-three sixty-four sixty-seven",
        "4 5 3 9 1 4 8 8 0 3 4 3 6 4 6 7",
        "4539 1488 uh 0343 6467",
        "4539 1488 | 0343 6467",  # read over two turns of the same channel
        "four five three nine one four double eight oh three four three six four six seven",
    ],
)
def test_card_numbers_in_written_and_spoken_forms(said: str) -> None:
    (finding,) = found(f"my card is {said} thanks", "pci")
    assert finding[0] == "credit_card"
    assert "card" not in finding[1] and "thanks" not in finding[1]


def test_expiry_and_security_code_near_a_card() -> None:
    text = "it's 4539 1488 0343 6467 and the expiry is 12/27 and the code is 123."
    assert found(text, "pci") == [
        ("card_expiry", "12/27"), ("card_security_code", "123."), ("credit_card", "4539 1488 0343 6467")
    ]  # fmt: skip
    spoken = found(f"{CARD} expiry oh four twenty six security code double five two", "pci")
    assert ("card_expiry", "oh four twenty six") in spoken
    assert ("card_security_code", "double five two") in spoken
    assert ("card_expiry", "April 2026") in found(f"{CARD} it expires April 2026", "pci")


@pytest.mark.parametrize(
    "text",
    [
        "that is 20% of $45.00 on the 5th of March 2024 at 10:30",
        "twenty percent of forty five dollars, on the twelfth of March twenty twenty four",
        "my order number is 4539 1488 0343 6468",  # 16 digits, fails Luhn
        "the code is 123 and the year 2024",  # no card said: no expiry nor code either
        "no one said oh well, I have 3 kids and 1,234 items",
    ],
)
def test_ordinary_numbers_survive_pci(text: str) -> None:
    assert found(text, "pci") == []


def test_ssn_phone_email_iban() -> None:
    assert found("my social is 123-45-6789", "ssn") == [("ssn", "123-45-6789")]
    assert found("one two three four five six seven eight nine", "ssn") == [
        ("ssn", "one two three four five six seven eight nine")
    ]
    assert found("area 666 12 3456 is never issued", "ssn") == []
    assert found("it's twenty, eight, oh nine, thirty nine, seventy two", "ssn") == [
        ("ssn", "twenty, eight, oh nine, thirty nine, seventy two")
    ]  # a comma keeps "twenty" and "eight" apart: 208 09 3972
    assert found("call me on 415 555 2671 today") == [("phone_number", "415 555 2671")]
    assert found("or plus 44 20 7946 0958") == [("phone_number", "44 20 7946 0958")]
    assert found("it's john dot smith at example dot com") == [("email", "john dot smith at example dot com")]
    assert found("write to john.smith@example.com today") == [("email", "john.smith@example.com")]
    assert found("j o h n at gmail dot com") == [("email", "j o h n at gmail dot com")]
    assert found("I'm at home dot now") == []
    assert found("IBAN GB82 WEST 1234 5698 7654 32 thanks") == [("iban", "GB82 WEST 1234 5698 7654 32")]
    assert found("IBAN GB83 WEST 1234 5698 7654 32 thanks") == []


def test_numbers_takes_every_number() -> None:
    assert found("I have 3 kids and twenty five dollars, no one else", "numbers") == [
        ("number", "3"), ("number", "twenty five")
    ]  # fmt: skip


def test_checks() -> None:
    assert luhn_valid(CARD) and not luhn_valid(CARD[:-1] + "8")
    assert ssn_valid("123456789") and not ssn_valid("000456789") and not ssn_valid("900456789")


def test_parse_redaction() -> None:
    assert parse_redaction(["pci,ssn", "pci"], None, None) == Redaction(("pci", "ssn"))
    assert parse_redaction([], None, None) is None
    assert parse_redaction(["pii"], "mask", "true") == Redaction(("pii",), "mask", "beep")
    for values, sub, audio, param in (
        (["pci,cards"], None, None, "redact"),
        (["pci"], "stars", None, "redact_sub"),
        (["pci"], None, "loud", "redact_audio"),
        ([], None, "beep", "redact_audio"),
    ):
        with pytest.raises(InvalidRequest) as error:
            parse_redaction(values, sub, audio)
        assert error.value.param == param


def _word(start: float, text: str) -> dict[str, Any]:
    return {"start": start, "end": start + 0.3, "word": " " + text, "confidence": 0.9}


def _result() -> dict[str, Any]:
    agent = [_word(0.0, "Card"), _word(0.4, "number?")]
    first = [_word(1.0, "It's"), *(_word(1.4 + 0.4 * n, g) for n, g in enumerate(("4539", "1488")))]
    second = [*(_word(6.0 + 0.4 * n, g) for n, g in enumerate(("0343", "6467."))), _word(7.0, "Done.")]

    def seg(ws: list[dict[str, Any]]) -> dict[str, Any]:
        return {"start": ws[0]["start"], "end": ws[-1]["end"], "text": "".join(w["word"] for w in ws).strip(),
                "words": ws, "tokens": [1, 2, 3]}  # fmt: skip

    docs = [
        {"stream": 0, "channel": 0, "label": "agent", "segments": [seg(agent)]},
        {"stream": 0, "channel": 1, "label": "customer", "segments": [seg(first), seg(second)]},
    ]
    return {"channels": docs, "timeline": [], "text": "", "stats": {"talk_time_s": {"a": 1.0}}}


def test_redact_result_rewrites_words_segments_timeline_and_text() -> None:
    result = redact_result(_result(), read(_result(), Redaction(("pci",))))
    customer = result["channels"][1]["segments"]
    assert [s["text"] for s in customer] == ["It's [CREDIT_CARD].", "Done."]
    marker = customer[0]["words"][1]
    assert (marker["start"], marker["end"], marker["redacted"]) == (1.4, 6.7, "credit_card")
    assert customer[0]["tokens"] == [] and result["channels"][0]["segments"][0]["tokens"] == [1, 2, 3]
    assert result["redactions"] == [
        {"type": "credit_card", "stream": 0, "channel": 1, "label": "customer", "start": 1.4, "end": 6.7}
    ]
    assert result["text"] == "agent: Card number?\ncustomer: It's [CREDIT_CARD].\ncustomer: Done."
    assert result["stats"] == {"talk_time_s": {"a": 1.0}}
    assert CARD[:4] not in str(result) and "6467" not in str(result)
    masked = redact_result(_result(), read(_result(), Redaction(("pci",), "mask")))
    assert masked["channels"][1]["segments"][0]["text"] == "It's ****."


def test_segment_without_words_is_redacted_from_its_text() -> None:
    result = _result()
    seg = result["channels"][1]["segments"][0]
    seg["words"], seg["text"] = [], "It's 4539 1488 0343 6467."
    redacted = redact_result(result, read(result, Redaction(("pci",))))
    assert redacted["channels"][1]["segments"][0] == {**seg, "text": "It's [CREDIT_CARD].", "tokens": [],
                                                      "end": seg["end"], "words": []}  # fmt: skip


def test_redacted_audio_replaces_only_the_padded_spans() -> None:
    rng = np.random.default_rng(0)
    left, right = (rng.uniform(-0.5, 0.5, RATE_HZ * 3).astype(np.float32) for _ in range(2))
    out = redacted_channels([left, right], [(1, 1.0, 1.5)], "silence")
    first, last = int((1.0 - AUDIO_PAD_S) * RATE_HZ), int((1.5 + AUDIO_PAD_S) * RATE_HZ)
    assert np.array_equal(out[0], left)
    assert not out[1][first:last].any()
    assert np.array_equal(out[1][:first], right[:first]) and np.array_equal(
        out[1][last + 1 :], right[last + 1 :]
    )
    beeped = redacted_channels([left], [(0, 1.0, 1.5)], "beep")[0][first:last]
    assert 0.2 < float(np.abs(beeped).max()) <= 0.25
