"""Numbers as the decoder writes them and as people say them, read from a channel's words.

A caller reads a card as "4539 1488 …", "four five three nine", "forty-five thirty-nine", "double five",
"oh"; the decoder writes some of that as digits ("4539,", "4-5-3-9"), some as words, split across words,
segments and pauses. `number_groups` turns the words into digit groups (each with the words it came from);
`clusters` joins the groups one caller reads as one number: groups separated only by fillers ("uh",
"and", "dash") and pauses under MAX_JOIN_GAP_S, over segment and turn boundaries of the same channel.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

UNITS = {
    "zero": 0, "oh": 0, "o": 0, "nought": 0, "naught": 0, "nil": 0, "one": 1, "two": 2, "three": 3,
    "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
}  # fmt: skip
TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
TENS = {"twenty": 2, "thirty": 3, "forty": 4, "fourty": 4, "fifty": 5, "sixty": 6, "seventy": 7, "eighty": 8,
        "ninety": 9}  # fmt: skip
REPEAT = {"double": 2, "triple": 3}
# "double" as the decoder wrote it for one voice ("4 to normal 5, normal 3"): a repeat only inside a run, a
# number right before it and a single digit right after it.
REPEAT_SOUNDALIKES = {"normal": 2}
# What the decoder writes for a digit word it misheard ("three" as "free", "zero" as "nero", "nine" as
# "I"): a digit only inside a run, with a number word or written digits right before and right after it.
SOUNDALIKES = {
    "free": 3, "tree": 3, "for": 4, "fore": 4, "to": 2, "too": 2, "won": 1, "ate": 8, "nero": 0, "i": 9,
    "nein": 9, "high": 9, "no": 0, "know": 0, "all": 0, "sex": 6, "sicks": 6, "fife": 5, "fine": 5,
}  # fmt: skip
SCALE = {"hundred": 100, "thousand": 1000}
# Said on their own, these are words more often than numbers ("no one", "oh, right"): a number only
# beside another number word.
AMBIGUOUS = frozenset({"one", "oh", "o"})
# Between two groups of one number: hesitations, joiners and the way people say separators.
FILLERS = frozenset({
    "uh", "um", "umm", "er", "erm", "ah", "hmm", "mm", "mhm", "and", "then", "okay", "ok", "yes", "yeah",
    "right", "sorry", "so", "dash", "hyphen", "space", "slash",
})  # fmt: skip
# A number followed by one of these, or written with one, is an amount, a share or a measure: never part
# of a card, an SSN or a phone number (but still a number for `numbers`).
UNIT_WORDS = frozenset({
    "percent", "per", "dollars", "dollar", "bucks", "cents", "cent", "pounds", "pound", "pence", "euros",
    "euro", "quid", "grand", "minutes", "minute", "hours", "hour", "days", "years", "months", "weeks",
    "seconds", "am", "pm", "o'clock", "times", "items", "kilos", "miles", "degrees",
})  # fmt: skip
MAX_JOIN_GAP_S = 8.0  # a caller reading a number in groups, the agent acknowledging each on the other line
MAX_FILLERS = 3
_CURRENCY = re.compile(r"[$£€¥%]|\d[.,:]\d|\d(st|nd|rd|th)\b")
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class Token:
    """One decoder word, normalised: its index in the channel, its time, and its lowercase parts."""

    index: int
    start: float
    end: float
    raw: str
    parts: tuple[str, ...]
    glued: bool = False  # written onto the word before it, without a space (".mary" after " lindler")


@dataclass(frozen=True)
class Group:
    """Digits one reader said or wrote together, and the words (first..last, inclusive) they came from."""

    digits: str
    first: int
    last: int
    start: float
    end: float
    amount: bool = False  # an amount, a share, a time or a measure (see UNIT_WORDS)
    plus: bool = False  # said or written with a leading + / "plus" (an international phone number)
    soundalike: bool = False  # a misheard digit word (SOUNDALIKES): part of a run, never a number alone


def tokens(words: Sequence[tuple[float, float, str]]) -> list[Token]:
    """The channel's words (start, end, text) as tokens."""
    out = []
    for index, (start, end, text) in enumerate(words):
        raw = text.strip()
        # "4,539,148,803": the decoder's thousands separators inside a long digit string are not amounts
        cleaned = re.sub(r"(?<=\d),(?=\d{3})", "", raw.lower())
        cleaned = re.sub(r"[^\w@+$£€%'./:-]", " ", cleaned)
        parts = tuple(p for p in re.split(r"[\s-]+", cleaned.strip(".,:;!?'/")) if p)
        glued = index > 0 and bool(text) and not text[0].isspace()
        out.append(Token(index, start, end, raw, parts, glued))
    return out


def _written(part: str) -> tuple[str, bool] | None:
    """Digits in a written word ("4539", "12/27", "+44", "$45.00"): the digits, and whether it is an amount."""
    if not any(ch.isdigit() for ch in part):
        return None
    amount = bool(_CURRENCY.search(part))
    return "".join(_DIGITS.findall(part)), amount


def number_groups(toks: Sequence[Token]) -> list[Group]:
    """Every number the words hold, as digit groups in order (see the module's docstring)."""
    groups: list[Group] = []
    atoms = [(tok, part) for tok in toks for part in tok.parts]
    inside = _soundalikes_inside(atoms)
    i = 0
    while i < len(atoms):
        tok, part = atoms[i]
        written = _written(part)
        taken = 1
        digits = ""
        amount = False
        if written is not None:
            digits, amount = written
        elif part in REPEAT and i + 1 < len(atoms) and _single_digit(atoms[i + 1][1]) is not None:
            digits = str(_single_digit(atoms[i + 1][1])) * REPEAT[part]
            taken = 2
        elif (
            part in REPEAT_SOUNDALIKES
            and 0 < i < len(atoms) - 1
            and (_numeric(atoms[i - 1][1]) or i - 1 in inside)
            and _single_digit(atoms[i + 1][1]) is not None
        ):
            digits = str(_single_digit(atoms[i + 1][1])) * REPEAT_SOUNDALIKES[part]
            taken = 2
        elif part in TENS:
            digits = str(TENS[part])
            said_apart = part == tok.parts[-1] and tok.raw[-1:] in ",.;?!"  # "twenty, eight": 20 then 8
            if (
                not said_apart
                and i + 1 < len(atoms)
                and atoms[i + 1][1] in UNITS
                and atoms[i + 1][1] not in ("oh", "o", "zero")
            ):
                digits += str(UNITS[atoms[i + 1][1]])
                taken = 2
            else:
                digits += "0"
        elif part in TEENS:
            digits = str(TEENS[part])
        elif part in UNITS:
            digits = str(UNITS[part])
        elif i in inside:
            digits = str(SOUNDALIKES[part])
        if not digits:
            i += 1
            continue
        value, scaled = _scaled(digits, atoms, i + taken)
        if scaled:
            digits, taken = value, scaled - i
        last_tok = atoms[i + taken - 1][0]
        plus = part.startswith("+") or (i > 0 and atoms[i - 1][1] == "plus")
        amount = amount or (i + taken < len(atoms) and atoms[i + taken][1] in UNIT_WORDS)
        groups.append(
            Group(
                digits,
                tok.index,
                last_tok.index,
                tok.start,
                last_tok.end,
                amount,
                plus=plus,
                soundalike=i in inside,
            )
        )
        i += taken
    return _drop_lone_ambiguous(groups, toks)


def _numeric(part: str) -> bool:
    return (
        part in UNITS or part in TEENS or part in TENS or part in REPEAT or any(ch.isdigit() for ch in part)
    )


def _soundalikes_inside(atoms: Sequence[tuple[Token, str]]) -> set[int]:
    """The atoms that are SOUNDALIKES inside a run: a number (or another such atom) on both sides."""
    inside: set[int] = set()
    numeric = [_numeric(part) for _, part in atoms]
    changed = True
    while changed:
        changed = False
        for i, (_, part) in enumerate(atoms):
            if i in inside or part not in SOUNDALIKES or i == 0 or i + 1 == len(atoms):
                continue
            if (numeric[i - 1] or i - 1 in inside) and (numeric[i + 1] or i + 1 in inside):
                inside.add(i)
                changed = True
    return inside


def _single_digit(part: str) -> int | None:
    if part in UNITS:
        return UNITS[part]
    return int(part) if len(part) == 1 and part.isdigit() else None


def _scaled(digits: str, atoms: Sequence[tuple[Token, str]], at: int) -> tuple[str, int]:
    """ "five hundred (and) twenty": the value, and the atom index after it; ("", 0) without a scale word."""
    if at >= len(atoms) or atoms[at][1] not in SCALE or len(digits) > 2:
        return "", 0
    value = int(digits) * SCALE[atoms[at][1]]
    at += 1
    if at < len(atoms) and atoms[at][1] == "and":
        at += 1
    rest = 0
    if at < len(atoms) and atoms[at][1] in TEENS:
        rest, at = TEENS[atoms[at][1]], at + 1
    elif at < len(atoms) and atoms[at][1] in TENS:
        rest, at = TENS[atoms[at][1]] * 10, at + 1
        if at < len(atoms) and atoms[at][1] in UNITS and UNITS[atoms[at][1]]:
            rest, at = rest + UNITS[atoms[at][1]], at + 1
    elif at < len(atoms) and atoms[at][1] in UNITS and UNITS[atoms[at][1]]:
        rest, at = UNITS[atoms[at][1]], at + 1
    return str(value + rest), at


def _drop_lone_ambiguous(groups: list[Group], toks: Sequence[Token]) -> list[Group]:
    """ "no one", "oh, right": a lone "one"/"oh" with no number word beside it is a word, not a number."""
    kept = []
    for n, group in enumerate(groups):
        word = toks[group.first].parts
        lone = group.first == group.last and len(word) == 1 and word[0] in AMBIGUOUS
        beside = (n > 0 and groups[n - 1].last == group.first - 1) or (
            n + 1 < len(groups) and groups[n + 1].first == group.last + 1
        )
        if not lone or beside:
            kept.append(group)
    return kept


def clusters(groups: Sequence[Group], toks: Sequence[Token]) -> list[list[Group]]:
    """Groups read as one number: consecutive, not amounts, apart by fillers only (at most MAX_FILLERS)
    and by at most MAX_JOIN_GAP_S."""
    out: list[list[Group]] = []
    for group in groups:
        if group.amount:
            continue
        if out and _joins(out[-1][-1], group, toks):
            out[-1].append(group)
        else:
            out.append([group])
    return out


def _joins(before: Group, after: Group, toks: Sequence[Token]) -> bool:
    between = toks[before.last + 1 : after.first]
    if len(between) > MAX_FILLERS or after.start - before.end > MAX_JOIN_GAP_S:
        return False
    return all(part in FILLERS for tok in between for part in tok.parts)
