"""Redaction of what the decoder wrote when it misheard (speechsvc.redact.cues, the sound-alikes of
speechsvc.redact.spoken): the misheard forms measured with tiny.en on bench_redact's calls, and the
ordinary numbers that must still survive."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from speechsvc.redact import Redaction
from speechsvc.redact.cues import Cue, cues_in
from speechsvc.redact.detect import find
from speechsvc.redact.spoken import tokens
from tests.unit.test_redact import words

PII = Redaction(("pii",)).entities


def found(text: str, asked: str = "", entities: frozenset[str] = PII) -> list[tuple[str, str]]:
    """What is found in `text` (said from 10 s on) after the other party's `asked` (said at 0 s)."""
    listed = [(start + 10.0, end + 10.0, word) for start, end, word in words(text)]
    cues: Sequence[Cue] = cues_in(tokens(words(asked))) if asked else ()
    return sorted(
        (f.type, " ".join(w[2].strip() for w in listed[f.first : f.last + 1]))
        for f in find(tokens(listed), entities, cues)
    )


@pytest.mark.parametrize(
    ("asked", "heard", "kind"),
    [
        # "oh seven" heard as 47: Luhn fails, but the agent asked for the card
        ("Can I take the card number?", "Yes, it's 44, 49, 78, 69, 47, 36, 62, 51.", "credit_card"),
        ("The long number on your Visa?", "It is 58, 48, 47, 51, 35, 0, 0, 0, 0, 0, 94.", "credit_card"),
        ("And your social security number?", "It's 28, 29, 39, 72.", "ssn"),
        # read in pairs: "five, seventy seven, fifty nine, …" heard with more digits, or fewer
        ("And your social security number?", "It's 5, 7, 10, 1, 59, 8, 10, 1, 7, 3", "ssn"),
        ("And your social security number?", "It's to 1813, 11, go to...", "ssn"),
        # "five" heard as "fine" inside the run ("five two five, two five, five nine four four")
        ("And your social security number?", "It's fine, two fine, two fine, five, nine, four, four.", "ssn"),
    ],
)
def test_a_misheard_number_after_its_cue(asked: str, heard: str, kind: str) -> None:
    assert [f[0] for f in found(heard, asked)] == [kind]
    assert found(heard) == []  # no cue: the checked reading alone, which fails


def test_the_cue_must_come_first_and_be_recent() -> None:
    heard = "Yes, it's 44, 49, 78, 69, 47, 36, 62, 51."
    listed = words(heard)
    late = cues_in(tokens([(60.0, 60.3, " card")]))  # after the number
    old = cues_in(tokens([(-40.0, -39.7, " card")]))  # 40 s before it
    assert find(tokens(listed), PII, late) == [] and find(tokens(listed), PII, old) == []


@pytest.mark.parametrize(
    "heard",
    [
        "five four three nine free one four eight eight zero three four three six four six seven",
        "4539 1488 nero 343 6467",  # "zero" as "nero"
        "4 5 3 to 1 4 8 8 0 3 4 3 6 4 6 7",  # "nine" as "to": not a sound-alike of 9, stays a miss
    ],
)
def test_sound_alikes_inside_a_digit_run(heard: str) -> None:
    kinds = [f[0] for f in found(f"my number is {heard} thanks", entities=frozenset({"credit_card"}))]
    assert kinds == ([] if " to " in heard else ["credit_card"])


def test_sound_alikes_alone_are_words() -> None:
    assert found("I went to the shop for free, no I know", entities=frozenset({"number"})) == []
    assert found("from 10 to 20 people", entities=frozenset({"number"})) == [
        ("number", "10"),
        ("number", "20"),
    ]


@pytest.mark.parametrize(
    ("asked", "heard", "email"),
    [
        ("", "It's james.james.gmail.com", "james.james.gmail.com"),  # "at" heard as a dot
        ("And your email address?", "It may be not done at company.com.", "may be not done at company.com."),
        ("What is your e-mail?", "It's an art game that gmail.com.", "an art game that gmail.com."),
    ],
)
def test_garbled_email_addresses(asked: str, heard: str, email: str) -> None:
    assert ("email", email) in found(heard, asked)


@pytest.mark.parametrize(
    ("asked", "said"),
    [
        ("Is it about your card?", "Yes, the card was charged 45 dollars twice, on the 3rd of May."),
        ("Can I have your social security number?", "I will send it by post, it takes 2 or 3 days."),
        ("What is your email address?", "I would rather not, call me at 4:30 instead."),
        ("What is your email address?", "I read it on the site, www.example.com, yesterday."),
        ("", "See example.co.uk or news.bbc.co.uk for 10 to 20 minutes."),
    ],
)
def test_ordinary_words_after_a_cue_survive(asked: str, said: str) -> None:
    assert found(said, asked) == []


def test_a_card_long_run_after_a_card_cue_is_taken_for_a_card() -> None:
    """The price of the cue: a 16-digit run that fails Luhn survives `pci` unless the card was spoken of
    in the 30 s before it; then it is redacted as one (the safe side for PCI)."""
    said = "It is 4374 0681 2415 8682."
    assert found(said, "How can I help?") == []
    assert [f[0] for f in found(said, "Is it about your card?")] == ["credit_card"]


def said_after(text: str, asked: str, entities: frozenset[str] = PII) -> list[str]:
    """The types found in `text` (said from 10 s on) with the cues of both parties, as reading.py takes them."""
    listed = [(start + 10.0, end + 10.0, word) for start, end, word in words(text)]
    cues = [*cues_in(tokens(words(asked))), *cues_in(tokens(listed))]
    return sorted(f.type for f in find(tokens(listed), entities, cues))


def test_a_number_named_an_order_number_is_not_a_card() -> None:
    """bench_redact, seed 6: "My order number is five oh five six, …" (16 digits, failing Luhn) written as
    13 digits that pass it. The nearer naming wins: after "order number" a run is no card, Luhn-valid or
    card-long after a card cue; a card spoken of after it is a card again."""
    assert said_after("My order number is final 5.6 4.524 5.533 4.4.0.", "How can I help?") == []
    assert said_after("My order number is 4374 0681 2415 8682.", "Is it about your card?") == []
    assert said_after("The booking number is 4539 1488 0343 6467.", "") == []
    assert said_after("My order number, no, the card number is 4539 1488 0343 6467.", "") == ["credit_card"]
    assert said_after("It's 4539 1488 0343 6467.", "And your order number?") == []
    assert said_after("It's 4539 1488 0343 6467.", "Your order number? And the card?") == ["credit_card"]
    # bench_redact, seed 38: an order number read again as "36 9 101 4 5 6 double to 48 6" passed the SSN
    # check; a number named an order number is no SSN or phone number either
    assert said_after("My order number is 143 07 0677.", "") == []
    assert said_after("My order number is 415 802 1208.", "") == []
    assert said_after("It's 143 07 0677.", "Your order number? And your social?") == ["ssn"]


def test_a_number_the_speaker_named_with_another_word_is_not_a_card() -> None:
    """bench_redact, seeds 54-85: "My order number is …" (16 digits failing Luhn) heard as "My older
    number is …", "My autumn number is …", whose digits then passed the Luhn or the phone check. A
    speaker's "<my, the, …> <word> number" names the number they read next, unless the word is one of the
    card, SSN or phone words or says nothing of what it is (cues.NAMING_NEUTRAL)."""
    for naming in (
        "My older number is",
        "My autumn number is",
        "Our membership number:",
        "The policy number is",
    ):
        assert said_after(f"{naming} 4539 1488 0343 6467.", "") == [], naming
        assert said_after(f"{naming} 415 802 1208.", "") == [], naming
    for neutral in ("My card number is", "My long number is", "The full number is", "My home number is",
                    "My account number is", "My old number is", "A new number:",
                    "My current number is", "The car number is"):  # fmt: skip
        assert said_after(f"{neutral} 4539 1488 0343 6467.", "") == ["credit_card"], neutral
    # the naming reaches the number said right after only, on the speaker's own channel
    assert said_after("My older number, sorry, | 4539 1488 0343 6467.", "") == ["credit_card"]
    assert said_after("It's 4539 1488 0343 6467.", "Can I have the car number?") == ["credit_card"]


def test_double_heard_as_normal_inside_a_run() -> None:
    """bench_redact, seeds 4-6, the Caribbean voice: "four five three nine, one four double eight, …"
    written "4539 14 normal 8 …"; "normal" is "double" only with a number right before and a digit after."""
    assert said_after("It's 4539 14 normal 8 0343 6467.", "Can I take the card number?") == ["credit_card"]
    assert said_after("It's 4539 14 normal 8 0343 6467.", "", frozenset({"credit_card"})) == ["credit_card"]
    assert said_after("That's normal 5 times a day.", "Can I take the card number?") == []


def test_an_address_the_decoder_wrote_in_glued_words() -> None:
    """Whisper's words for "lindler.mary at company.com" are " lindler", ".mary", " at", " company", ".com"."""
    listed = [(0.0, 0.3, " It's"), (0.3, 0.6, " lindler"), (0.6, 0.8, ".mary"), (0.8, 1.0, " at"),
              (1.0, 1.4, " company"), (1.4, 1.6, ".com")]  # fmt: skip
    assert [(f.type, f.first, f.last) for f in find(tokens(listed), PII)] == [("email", 1, 5)]


def test_after_a_social_cue_ten_digits_are_an_ssn_not_a_phone_number() -> None:
    heard = "It's 202 76 7420 1."  # "two zero two, seven six, seven four two zero" with one digit too many
    assert [f[0] for f in found(heard, "And your social security number?")] == ["ssn"]
    assert [f[0] for f in found("It's 415 555 2671.", "And a phone number?")] == ["phone_number"]


def test_oh_heard_as_all_inside_a_card() -> None:
    assert [f[0] for f in found("It's 4539 1488 all 343 6467", entities=frozenset({"credit_card"}))] == [
        "credit_card"
    ]


def test_the_long_number_is_a_card_cue() -> None:
    heard = "It's in 5 0 6 9 2 0 5 | 7 5 5 9 4 7 0 6"  # a 9 dropped: 15 digits, Luhn fails
    assert [f[0] for f in found(heard, "The long number please.")] == ["credit_card"]
    assert found(heard, "The number please.") == [] and found(heard, "How long is it?") == []


def test_a_misheard_pair_between_two_runs_after_the_cue() -> None:
    """bench_redact, seed 9: "five nine seven, double eight, seven oh one five" written "5-9-7, don't late,
    7-01-5" (both readings): after the social question the words between the runs stand for the digits
    misheard, so the runs and the words are one SSN. Without the cue, with more words between, or with an
    amount between, they stay apart."""
    heard = "It's 5-9-7, don't late, 7-01-5."
    assert found(heard, "And your social security number?") == [("ssn", "5-9-7, don't late, 7-01-5.")]
    assert found(heard) == []
    assert found("It's 5-9-7, I think it is 7-01-5.", "And your social security number?") == []
    assert found("It's 597, 45 dollars, 7015.", "And your social security number?") == []
    assert found("I have 2 kids and 3 cats.", "And your social security number?") == []
    card = "It's 4539 1488 high and 3436 4678."  # a group of the card lost to the words between
    assert [f[0] for f in found(card, "Can I take the card number?")] == ["credit_card"]
    assert found("My card ending 4321 expired in 2023.", "Is it about your card?") == []


@pytest.mark.parametrize(
    "heard",
    [
        "Sure, 415-293-694.",  # "four one five, two nine three, six nine four three" a digit short: SSN-valid
        "2, 6, 1, 7, 2, 4, 8, 9, 0, 3, 8",  # "sure" heard as a digit: 11 digits that are no valid number
        "It's 212 453 1901.",  # a valid one stays a phone number
    ],
)
def test_after_a_phone_cue_a_number_about_as_long_is_a_phone_number(heard: str) -> None:
    """bench_redact, seeds 10-13: the customer's answer to "A number to call you back?" written as an SSN or
    as no valid number. After a phone cue (the last cue before it), 7-15 digits are a phone number; a card
    is still a card, and a card or social question nearer to the number wins."""
    assert [f[0] for f in found(heard, "A number to call you back?")] == ["phone_number"]
    assert said_after(heard, "Can I have your mobile? And your social security number?") != ["phone_number"]
    assert said_after("It's 4539 1488 0343 6467.", "A number to call you back?") == ["credit_card"]
    assert found("I was charged 45 dollars on the 3rd of May.", "A number to call you back?") == []


def test_a_run_too_long_for_a_card_is_searched_for_one_only_after_a_card_cue() -> None:
    """bench_redact, seed 31: an order number read again digit by digit, with a loop of eights at its end
    (20 digits), held a Luhn-valid piece at one of its many group boundaries. Without a card cue such a run
    is no card; after one, a card and its expiry read in one go are still cut apart."""
    heard = "It's 5, 4, 3, 1, 7, 9, 7, 5, 2, 1, 9, 4, 2, 1, 8, 8, 8, 8, 8, 8."
    assert found(heard, "How can I help?") == []
    assert "credit_card" in [f[0] for f in found(heard, "Can I take the card number?")]
    in_one_go = "It's 4539 1488 0343 6467 12 27."
    assert "credit_card" in [f[0] for f in found(in_one_go, "The card number and its expiry, please?")]
