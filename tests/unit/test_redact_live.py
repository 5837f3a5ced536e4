"""Redaction of a live stream's finals and interims (speechsvc.redact.live): a card read over two finals is
caught by holding the first back; held finals go out with the next, after HOLD_S, or at the end; interims
are suppressed while a span may be open."""

from __future__ import annotations

from speechsvc.redact import Redaction
from speechsvc.redact.cues import Cue
from speechsvc.redact.live import HOLD_S, LiveRedactor
from speechsvc.results.deepgram_words import DgWord, bare


def said(text: str, start_s: float, channel: int = 1) -> list[DgWord]:
    out = []
    for n, word in enumerate(text.split()):
        at = start_s + 0.4 * n
        out.append(DgWord(bare(word), word, at, at + 0.3, 0.9, channel))
    return out


def texts(sent: list[list[DgWord]]) -> list[str]:
    return [" ".join(w.punctuated for w in words) for words in sent]


def redactor(classes: str = "pci", cues: list[Cue] | None = None) -> tuple[LiveRedactor, list[list[DgWord]]]:
    sent: list[list[DgWord]] = []
    return LiveRedactor(Redaction(tuple(classes.split(","))), [] if cues is None else cues), sent


def test_a_card_over_two_finals_is_held_then_redacted_in_both() -> None:
    live, sent = redactor()
    live.final(said("It is 4539 1488.", 1.0), sent.append)
    assert sent == [] and live.holding
    assert live.interim(said("0343", 4.0)) is None  # a span is open: no interim
    live.final(said("0343 6467.", 4.0), sent.append)
    assert texts(sent) == ["It is [CREDIT_CARD].", "[CREDIT_CARD]."]
    assert not live.holding
    (first,), (second,) = ([w for w in words if w.word == "credit_card"] for words in sent)
    assert (first.start, first.end) == (1.8, 2.5) and (second.start, second.end) == (4.0, 4.7)


def test_a_held_final_goes_out_after_hold_s_or_at_the_end() -> None:
    live, sent = redactor()
    live.final(said("My flat is number 12", 1.0), sent.append)
    due = 1.0 + 1.9 + HOLD_S
    live.release_due(due - 0.5, False)
    live.release_due(due + 0.1, True)  # speaking: it may go on with the number
    live.release_due(due + 0.2, False)  # due, once: a final may be on its way
    assert sent == []
    live.release_due(due + 0.3, False)
    assert texts(sent) == ["My flat is number 12"]
    live.final(said("It is 4539", 20.0), sent.append)
    live.flush()
    assert texts(sent)[-1] == "It is 4539"


def test_finals_without_an_open_number_go_out_at_once() -> None:
    live, sent = redactor()
    live.final(said("Hello, how can I help?", 0.0), sent.append)
    live.final(said("It is 4539 1488 0343 6467, thanks.", 3.0), sent.append)
    live.final(said("I paid 45 dollars", 9.0), sent.append)
    assert texts(sent) == ["Hello, how can I help?", "It is [CREDIT_CARD], thanks.", "I paid 45 dollars"]


def test_a_finalize_does_not_hold() -> None:
    live, sent = redactor()
    live.final(said("It is 4539 1488.", 1.0), sent.append, hold=False)
    assert texts(sent) == ["It is 4539 1488."]


def test_the_expiry_in_a_later_final_and_a_cue_from_the_other_channel() -> None:
    cues: list[Cue] = []
    agent, to_agent = redactor("pci", cues)
    customer, sent = redactor("pci", cues)
    agent.final(said("Can I take the card number?", 0.0, channel=0), to_agent.append)
    customer.final(said("Yes, 44, 49, 78, 69, 47, 36, 62, 51.", 3.0), sent.append)  # misheard: Luhn fails
    customer.final(said("The expiry is 12/27.", 10.0), sent.append)
    assert texts(sent) == ["Yes, [CREDIT_CARD].", "The expiry is [CREDIT_CARD_EXPIRY]."]


def test_interims_redacted_or_suppressed() -> None:
    live, _ = redactor("pii")
    assert texts([live.interim(said("It is 4539 1488 0343 6467 thanks", 0.0)) or []]) == [
        "It is [CREDIT_CARD] thanks"
    ]
    assert live.interim(said("It is 4539 1488", 0.0)) is None  # digits no span covers yet
    assert live.interim(said("It is john dot smith at", 0.0)) is None  # an e-mail address on its way
    assert live.interim(said("I paid 45 dollars", 0.0)) is not None  # an amount is never part of one
    mask, _ = redactor("ssn")
    mask.redaction = Redaction(("ssn",), "mask")
    assert texts([mask.interim(said("It is 123-45-6789", 0.0)) or []]) == ["It is ****"]
