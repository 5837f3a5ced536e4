"""What to redact in one channel's words: card numbers (with the expiry and security code said near one),
SSNs, phone numbers, e-mail addresses, IBANs, person names (speechsvc.redact.names) and, for `numbers`,
every number. Each finding is a span of
word indices; nothing here keeps or returns the value itself."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass

import phonenumbers

from speechsvc.redact import names, spoken
from speechsvc.redact.cues import Cue, cued, cued_length, last_cue, named_here, named_otherwise
from speechsvc.redact.spoken import Group, Token

CARD_DIGITS = (13, 19)  # ISO/IEC 7812 primary account numbers
NEAR_CARD_S = 60.0  # the expiry and security code are asked for right after the number (or just before)
CARD_EXTRAS_DIGITS = (3, 8)  # MYY/MMYY expiries, 3-4 digit security codes, or both read in one go
PHONE_DIGITS = (7, 15)  # E.164 allows 15
PHONE_REGIONS = ("US", "GB")  # national numbers read without a country code are tried in these
MONTHS = frozenset({
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
})  # fmt: skip
TLDS = frozenset({
    "com", "org", "net", "edu", "gov", "io", "co", "uk", "de", "fr", "es", "it", "nl", "eu", "us", "ca",
    "au", "info", "biz", "me", "ie", "ch", "at", "be", "se", "no", "dk", "pl", "in",
})  # fmt: skip
MAIL_PROVIDERS = frozenset({
    "gmail", "googlemail", "outlook", "hotmail", "live", "msn", "yahoo", "icloud", "aol", "proton",
    "protonmail", "gmx", "mail", "zoho", "yandex", "comcast", "verizon",
})  # fmt: skip
EMAIL_MAX_WORDS = 6  # of a garbled local part before the domain
EMAIL_LEAD_WORDS = frozenset({
    "it's", "its", "is", "it", "my", "email", "mail", "address", "sure", "yes", "yeah", "that's", "okay", "ok",
})  # fmt: skip
EMAIL_JOINERS = {"dot": ".", "underscore": "_", "dash": "-", "hyphen": "-", "period": "."}
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_IBAN_START = re.compile(r"[a-z]{2}\d{2}")
IBAN_LENGTH = (15, 34)
NAMED_AWAY = frozenset({"credit_card", "ssn", "phone_number"})  # what a number named an order number is not
BRIDGED_WORDS = 2  # words a misheard digit pair became between two runs of one cued number (_bridged)


@dataclass(frozen=True)
class Finding:
    """One thing to redact: its type and the channel's words first..last (inclusive)."""

    type: str
    first: int
    last: int


def luhn_valid(digits: str) -> bool:
    """The card-number check digit (ISO/IEC 7812-1 annex B)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def ssn_valid(digits: str) -> bool:
    """Nine digits the SSA could have issued: area not 000, 666 or 9xx; group not 00; serial not 0000."""
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return (
        len(digits) == 9
        and area not in ("000", "666")
        and area[0] != "9"
        and group != "00"
        and serial != "0000"
    )


def phone_valid(digits: str, plus: bool) -> bool:
    """A number `phonenumbers` holds valid: international with a + (or "plus"), else in PHONE_REGIONS."""
    if not PHONE_DIGITS[0] <= len(digits) <= PHONE_DIGITS[1]:
        return False
    candidates = [("+" + digits, None)] if plus else [(digits, region) for region in PHONE_REGIONS]
    for text, region in candidates:
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(text, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False


def find(toks: Sequence[Token], entities: frozenset[str], cues: Sequence[Cue] = ()) -> list[Finding]:
    """Every finding of the wanted entity types in one channel's tokens, in any order, maybe overlapping;
    `cues` (speechsvc.redact.cues, from every channel of the call) let a misheard card or SSN count; the
    speaker's own namings of a number (cues.named_here) are read here."""
    cues = [*cues, *named_here(toks)]
    groups = spoken.number_groups(toks)
    found: list[Finding] = []
    cards: list[Finding] = []
    runs = spoken.clusters(groups, toks)
    taken = []
    for cluster in runs:
        before = len(found) + len(cards)
        found += _digits_in(cluster, entities, cards, cues)
        taken.append(len(found) + len(cards) > before)
    for finding in _bridged(runs, taken, groups, entities, cues):
        (cards if finding.type == "credit_card" else found).append(finding)
    if "credit_card" in entities and cards:
        found += _card_extras(groups, toks, cards, found)
    found += cards
    if "email" in entities:
        found += _emails_glued(toks, cues)
    if "iban" in entities:
        found += _ibans(toks)
    if "number" in entities:
        found += _numbers(groups)
    if "person_name" in entities and (recognize := names.recognizer()) is not None:
        found += [Finding("person_name", first, last) for first, last in names.person_spans(toks, recognize)]
    return found


def _digits_in(
    cluster: list[Group], entities: frozenset[str], cards: list[Finding], cues: Sequence[Cue] = ()
) -> list[Finding]:
    """A cluster that is one number: a card (also, after a card cue, as its longest valid prefix or
    suffix at a group boundary, the rest tried again: a card and its expiry read in one go; without one,
    a run too long for a card is not searched for a valid piece, as one piece in ten passes Luhn by
    chance and a run read digit by digit has a dozen), else, right after a phone cue, a phone number
    about as long as one, else an SSN, else a phone number; else, after its cue, a run about as long as a
    card or an SSN. None of these where the speaker has just named it an order number or the like
    (cues.named_otherwise): a misheard order number passes one of the checks as often as a card does."""
    digits = "".join(g.digits for g in cluster)
    if cluster and named_otherwise(cues, cluster[0].start):
        entities = entities - NAMED_AWAY
    if "credit_card" in entities:
        if CARD_DIGITS[0] <= len(digits) <= CARD_DIGITS[1] and luhn_valid(digits):
            cards.append(Finding("credit_card", cluster[0].first, cluster[-1].last))
            return []
        if len(digits) > CARD_DIGITS[1] and cued(cues, "credit_card", cluster[0].start):
            for cut in _cuts(cluster):
                head, tail = cluster[:cut], cluster[cut:]
                for part, rest in ((head, tail), (tail, head)):
                    number = "".join(g.digits for g in part)
                    if CARD_DIGITS[0] <= len(number) <= CARD_DIGITS[1] and luhn_valid(number):
                        cards.append(Finding("credit_card", part[0].first, part[-1].last))
                        return _digits_in(rest, entities, cards, cues)
    phone_asked = last_cue(cues, cluster[0].start) == "phone_number"  # "a number to call you back?"
    if "phone_number" in entities and phone_asked and cued_length("phone_number", len(digits)):
        # a phone number, even one heard a digit short that passes the SSN check
        return [Finding("phone_number", cluster[0].first, cluster[-1].last)]
    if "ssn" in entities and ssn_valid(digits):
        return [Finding("ssn", cluster[0].first, cluster[-1].last)]
    ssn_cued = "ssn" in entities and cued_length("ssn", len(digits)) and cued(cues, "ssn", cluster[0].start)
    if "phone_number" in entities and not ssn_cued and phone_valid(digits, cluster[0].plus):
        return [Finding("phone_number", cluster[0].first, cluster[-1].last)]
    for kind in ("credit_card", "ssn"):
        if kind in entities and cued_length(kind, len(digits)) and cued(cues, kind, cluster[0].start):
            finding = Finding(kind, cluster[0].first, cluster[-1].last)
            if kind == "credit_card":
                cards.append(finding)
                return []
            return [finding]
    return []


def _bridged(
    runs: list[list[Group]],
    taken: list[bool],
    groups: list[Group],
    entities: frozenset[str],
    cues: Sequence[Cue],
) -> list[Finding]:
    """After its cue, a card or an SSN the decoder wrote as two runs with a word or two between them that
    are no number: those words stand for digits it misheard ("five nine seven, double eight, seven oh one
    five" written "5-9-7, don't late, 7-01-5"), so the runs and the words between are one number when, a
    digit counted for each word, they are about as long as one (cues.CUED_DIGITS). Neither run may be a
    finding already, and no other number may lie between them."""
    found: list[Finding] = []
    for n in range(1, len(runs)):
        before, after = runs[n - 1], runs[n]
        words = after[0].first - before[-1].last - 1
        if taken[n - 1] or taken[n] or not 0 < words <= BRIDGED_WORDS:
            continue
        if after[0].start - before[-1].end > spoken.MAX_JOIN_GAP_S or named_otherwise(cues, before[0].start):
            continue
        if any(before[-1].last < group.first and group.last < after[0].first for group in groups):
            continue  # an amount or a measure between them
        digits = sum(len(group.digits) for group in before + after) + words
        for kind in ("credit_card", "ssn"):
            if kind in entities and cued(cues, kind, before[0].start) and cued_length(kind, digits):
                found.append(Finding(kind, before[0].first, after[-1].last))
                taken[n] = True
                break
    return found


def _cuts(cluster: list[Group]) -> list[int]:
    """Group boundaries to try, the longest card first."""
    sizes = [len("".join(g.digits for g in cluster[:cut])) for cut in range(1, len(cluster))]
    total = sizes[-1] + len(cluster[-1].digits) if sizes else 0
    return sorted(range(1, len(cluster)), key=lambda cut: -max(sizes[cut - 1], total - sizes[cut - 1]))


def _card_extras(
    groups: list[Group], toks: Sequence[Token], cards: list[Finding], taken: list[Finding]
) -> list[Finding]:
    """The expiry and the security code said within NEAR_CARD_S of a card: any other number of 3 to 8
    digits (expiry and code read in one go), or a month name and a year; amounts excepted. One that
    starts with a month (MMYY) is the expiry, the rest codes."""
    spans = [(toks[c.first].start - NEAR_CARD_S, toks[c.last].end + NEAR_CARD_S) for c in cards]
    used = {i for f in [*cards, *taken] for i in range(f.first, f.last + 1)}
    out: list[Finding] = []
    for cluster in spoken.clusters(groups, toks):
        runs: list[list[Group]] = [[]]
        for group in cluster:  # what is left of a cluster a card was cut from
            if any(i in used for i in range(group.first, group.last + 1)):
                runs.append([])
            else:
                runs[-1].append(group)
        for run in runs:
            if run and any(a <= run[0].start and run[-1].end <= b for a, b in spans):
                out += _extra(run, toks)
    return out


def _extra(run: list[Group], toks: Sequence[Token]) -> list[Finding]:
    first, last = run[0].first, run[-1].last
    digits = "".join(g.digits for g in run)
    if first > 0 and len(digits) in (2, 4) and any(p in MONTHS for p in toks[first - 1].parts):
        return [Finding("card_expiry", first - 1, last)]
    if not CARD_EXTRAS_DIGITS[0] <= len(digits) <= CARD_EXTRAS_DIGITS[1]:
        return []
    expiry = len(digits) >= 4 and 1 <= int(digits[:2]) <= 12
    return [Finding("card_expiry" if expiry else "card_security_code", first, last)]


def _numbers(groups: list[Group]) -> list[Finding]:
    return [Finding("number", g.first, g.last) for g in groups if not g.soundalike]


def _emails_glued(toks: Sequence[Token], cues: Sequence[Cue]) -> list[Finding]:
    """E-mail addresses in the words, those the decoder wrote apart without a space ("lindler", ".mary")
    read as one word."""
    joined: list[Token] = []
    spans: list[tuple[int, int]] = []  # the words each joined token holds
    for tok in toks:
        if joined and tok.glued:
            prev = joined[-1]
            (both,) = spoken.tokens([(prev.start, tok.end, prev.raw + tok.raw)])
            joined[-1] = dataclasses.replace(both, index=prev.index)
            spans[-1] = (spans[-1][0], tok.index)
        else:
            joined.append(dataclasses.replace(tok, index=len(joined)))
            spans.append((tok.index, tok.index))
    return [Finding(f.type, spans[f.first][0], spans[f.last][1]) for f in _emails(joined, cues)]


def _emails(toks: Sequence[Token], cues: Sequence[Cue] = ()) -> list[Finding]:
    """Written (john.smith@example.com) or said ("john dot smith at example dot com"): a local part, "at",
    and a domain of labels joined by "dot" that ends in a known top-level domain; "at" heard as a dot in
    front of a mail provider ("anna.james.gmail.com"); after an e-mail cue, the words before a domain."""
    out = []
    for tok in toks:
        raw = tok.raw.lower().strip(".,;:!?")
        if _EMAIL.search(raw) or _provider_dotted(raw):
            out.append(Finding("email", tok.index, tok.index))
    parts = [(tok.index, part) for tok in toks for part in tok.parts]
    for at, (_, part) in enumerate(parts):
        if part != "at" or at == 0:
            continue
        end = _domain_end(parts, at + 1)
        if end is None:
            continue
        start = at - 1
        while start >= 2 and parts[start - 1][1] in EMAIL_JOINERS:
            start -= 2
        while start >= 1 and len(parts[start - 1][1]) == 1 and parts[start - 1][1].isalpha():
            start -= 1  # a local part spelled letter by letter
        out.append(Finding("email", parts[start][0], parts[end][0]))
    return out + _cued_emails(toks, cues)


def _provider_dotted(raw: str) -> bool:
    labels = raw.split(".")
    return len(labels) >= 3 and labels[-1] in TLDS and labels[-2] in MAIL_PROVIDERS and all(labels)


def _cued_emails(toks: Sequence[Token], cues: Sequence[Cue]) -> list[Finding]:
    """After an e-mail cue, a written domain ("company.com") and the words before it, back to the first
    word of the answer ("it's", "is", "my", …) or the sentence before, at most EMAIL_MAX_WORDS."""
    out = []
    for tok in toks:
        labels = tok.raw.lower().strip(".,;:!?").split(".")
        if len(labels) < 2 or labels[-1] not in TLDS or not all(labels) or labels[0] == "www":
            continue  # not a domain, or a web address
        if not cued(cues, "email", tok.start):
            continue
        first = tok.index
        while first > 0 and tok.index - first < EMAIL_MAX_WORDS:
            before = toks[first - 1]
            if before.raw[-1:] in ".?!,;:" or set(before.parts) & EMAIL_LEAD_WORDS or not before.parts:
                break
            first -= 1
        out.append(Finding("email", first, tok.index))
    return out


def _domain_end(parts: Sequence[tuple[int, str]], at: int) -> int | None:
    """The index of the part that ends a domain starting at `at`, or None."""
    if at >= len(parts):
        return None
    label = parts[at][1]
    if "." in label and label.rsplit(".", 1)[1] in TLDS:
        return at
    end = None
    while at + 2 < len(parts) and parts[at + 1][1] in ("dot", "period") and parts[at + 2][1].isalnum():
        at += 2
        if parts[at][1] in TLDS:
            end = at
    return end


def _ibans(toks: Sequence[Token]) -> list[Finding]:
    """A country code, two check digits and up to 30 letters and digits, in groups, mod-97 valid (ISO 13616)."""
    out = []
    for n, tok in enumerate(toks):
        joined = "".join(tok.parts)
        if not _IBAN_START.match(joined):
            continue
        text, best = joined, None
        for m in range(n, len(toks)):
            if m > n:
                piece = "".join(toks[m].parts)
                if not piece.isalnum() or len(piece) > 4:
                    break
                text += piece
            if IBAN_LENGTH[0] <= len(text) <= IBAN_LENGTH[1] and _iban_valid(text):
                best = m
        if best is not None:
            out.append(Finding("iban", n, best))
    return out


def _iban_valid(text: str) -> bool:
    if not text.isalnum():
        return False
    moved = (text[4:] + text[:4]).upper()
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1
