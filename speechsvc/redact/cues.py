"""What the parties say before a card number, an SSN or an e-mail address ("can I take the card number?",
"your social?", "and your email address?"), on any channel of the call.

The decoder mishears digits ("oh seven" as "47", a hallucinated "0"), and one wrong digit fails the Luhn
or the SSA check, so the checked reading misses the number. Read within CUE_S after its cue, a run of about
the right length (CUED_DIGITS: the ASR drops or adds a digit or two) is taken for the number all the same;
without a cue, only the checked reading counts, so a 16-digit order number that fails Luhn survives `pci`
where nobody spoke of a card. And a number the speaker has just called an order, reference, booking or
ticket number is not a card, even where it happens to pass Luhn (one misheard digit string in ten does).
The same for an e-mail address the decoder garbled ("mary dot john at" heard as "may be not done at
company.com"): after an e-mail cue, the words before a domain are its local part."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from speechsvc.redact.spoken import Token

CUE_S = 30.0  # the question, then the answer read at a dictation pace, often after a pause
CUES = {
    "credit_card": frozenset({"card", "visa", "mastercard", "amex", "debit", "credit"}),
    "ssn": frozenset({"social", "ssn"}),
    "email": frozenset({"email", "mail"}),
    "phone_number": frozenset({"phone", "telephone", "mobile", "cell", "cellphone", "landline"}),
}
# two words in a row: "the long number" is what British call centres call the card number; "my order number
# is …" names a number that is not a card, an SSN or a phone number (a "reference" cue: see named_otherwise)
CUE_PHRASES = {
    "credit_card": (("long", "number"),),
    "phone_number": (("call", "you"), ("reach", "you"), ("call", "back")),  # "a number to call you back?"
    "reference": tuple(
        (word, "number")
        for word in ("order", "reference", "confirmation", "tracking", "invoice", "booking", "ticket", "case")
    ),
}
# after a social cue, 6-15: an SSN read in pairs is often heard as more digits ("seventy seven" as "7, 10, 7")
# or fewer ("two, eighteen, thirteen" as "to 1813"); the answer to "your social?" is the SSN either way
# after a phone cue, 7-15 (E.164's longest): a number read in three groups is often heard with a digit more
# or less, and then passes the SSN check or fails the phone one
CUED_DIGITS = {"credit_card": (12, 20), "ssn": (6, 15), "phone_number": (7, 15)}
# A speaker who names their number ("my membership number is …") says what it is: any "<determiner> <word>
# number" names it otherwise when the word is none of NAMING_NEUTRAL (the card, SSN and phone words, and
# the words that say nothing of what the number is: "the full number", "my home number"). The decoder's
# "my older number" and "my autumn number" for "my order number" (bench_redact, seeds 54-85) are namings
# too. Read on the speaker's own channel only (named_here), and for the number said right after
# (NAMING_REACH_S): an agent's "card number" misheard as "car number" names nothing the customer reads.
# What the decoder writes for a customer's own "my card number" is neutral too ("my current number": one
# in twelve such calls, a probe of 36 calls on tiny.en, 2026-12-01), as are "car", "cart" and "guard".
DETERMINERS = frozenset({"my", "our", "your", "the", "his", "her", "their"})
NAMING_NEUTRAL = frozenset({
    *CUES["credit_card"], *CUES["ssn"], *CUES["email"], *CUES["phone_number"], "long", "security", "account",
    "bank", "pin", "id", "tax", "insurance", "national", "home", "work", "office", "business",
    "personal", "contact", "callback", "direct", "daytime", "evening", "main", "best", "new", "old", "other",
    "fax", "full", "whole", "complete", "entire", "same", "right", "correct", "wrong", "last", "first",
    "digit", "digits", "actual", "real", "primary", "billing", "whatsapp", "current", "previous", "present",
    "usual", "regular", "only", "temporary", "alternate", "alternative", "emergency", "spare", "second",
    "car", "cart", "cards", "guard", "cod",
})  # fmt: skip
NAMING_REACH_S = 5.0


@dataclass(frozen=True)
class Cue:
    """A cue word for an entity type, and when it ended (seconds on the call's timeline)."""

    type: str
    at_s: float


def cues_in(toks: Sequence[Token]) -> list[Cue]:
    """The cue words (and CUE_PHRASES) among one channel's tokens."""
    found = [
        Cue(kind, tok.end)
        for tok in toks
        for kind, words in CUES.items()
        if any(p in words for p in tok.parts)
    ]
    atoms = [(tok, part) for tok in toks for part in tok.parts]
    for kind, phrases in CUE_PHRASES.items():
        for n in range(1, len(atoms)):
            if (atoms[n - 1][1], atoms[n][1]) in phrases:
                found.append(Cue(kind, atoms[n][0].end))
    return found


def cued(cues: Sequence[Cue], kind: str, start_s: float) -> bool:
    """Whether a cue for `kind` ended within CUE_S before `start_s`."""
    return any(cue.type == kind and 0.0 <= start_s - cue.at_s <= CUE_S for cue in cues)


def last_cue(cues: Sequence[Cue], start_s: float) -> str | None:
    """The type of the last cue within CUE_S before `start_s` (None without one)."""
    last = _last(cues, start_s)
    return last.type if last else None


def _last(cues: Sequence[Cue], start_s: float) -> Cue | None:
    before = [cue for cue in cues if 0.0 <= start_s - cue.at_s <= CUE_S]
    return max(before, key=lambda cue: cue.at_s) if before else None


def named_here(toks: Sequence[Token]) -> list[Cue]:
    """A speaker's namings of the number they read next ("my membership number", "the policy number"):
    a "named" cue for each "<determiner> <word> number" whose word is none of NAMING_NEUTRAL."""
    atoms = [(tok, part) for tok in toks for part in tok.parts]
    return [
        Cue("named", atoms[n][0].end)
        for n in range(2, len(atoms))
        if atoms[n][1] == "number"
        and atoms[n - 2][1] in DETERMINERS
        and atoms[n - 1][1].isalpha()
        and atoms[n - 1][1] not in NAMING_NEUTRAL
    ]


def named_otherwise(cues: Sequence[Cue], start_s: float) -> bool:
    """Whether the last cue within CUE_S before `start_s` names the number as an order, reference, ticket
    or the like, not a card, an SSN or a phone number ("Is it about your card?" … "My order number is …"):
    the nearer naming wins. A card said after it ("the order number on my card") is a card cue again. A
    speaker's own naming (named_here) reaches the number said within NAMING_REACH_S."""
    last = _last(cues, start_s)
    if last is None:
        return False
    return last.type == "reference" or (last.type == "named" and start_s - last.at_s <= NAMING_REACH_S)


def cued_length(kind: str, digits: int) -> bool:
    """Whether a run of `digits` digits is about as long as a `kind` (CUED_DIGITS)."""
    low, high = CUED_DIGITS[kind]
    return low <= digits <= high
