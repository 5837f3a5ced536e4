"""A second listen where a number is asked for: the stretches of a channel after a cue (card, social, phone,
e-mail, on any channel in the CUE_S before) are decoded again on their own, and the detector reads those
words too.

The first decode mishears digits read at a dictation pace ("one four three, oh seven" as
"143,000,000,000,000", "five two five" as "fine, two fine"); one wrong digit fails the Luhn or SSA check.
A clip of a few seconds decoded alone (no previous text) hears them better. The findings on the second
reading are mapped back to the first reading's words by time: the result keeps the first pass's text,
and only a marker replaces words there, so no digit the first pass did not write ever reaches the
result. The decoding itself is a callable (`Redecode`) the pipeline gives, so this module stays beside
the result and does not reach into speechsvc.asr.

A card, an SSN or a phone number the second listen finds counts only after a cue of its own type
(OWN_CUE): a number read again is heard anew, and a misheard 16-digit order number passes the Luhn check
one time in ten, a phone or SSN check as often. Where nobody spoke of a card, only the first reading's
checked number counts (bench_redact, seeds 54-85: five of seven false positives were uncued order numbers
read again). So a run of digits nobody asked for is not listened to again.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from speechsvc.redact import names
from speechsvc.redact.cues import CUE_S, cued, cues_in
from speechsvc.redact.detect import Finding, find
from speechsvc.redact.reading import Reading
from speechsvc.redact.spoken import Token, clusters, number_groups, tokens

SAMPLE_RATE_HZ = 16000
PAD_BEFORE_S = 0.5  # the clip starts before the run's first word (its onset is often cut short)
PAD_AFTER_S = 1.5  # and goes on after the run: the last digits may be missing from the first reading
ANSWER_GAP_S = 2.0  # after a cue: the words of each channel apart by less than this are one answer
# the types a finding of the second listen counts for only after their own cue (see the module's
# docstring); a card's expiry and security code (found beside a card only) count with their card
OWN_CUE = frozenset({"credit_card", "ssn", "phone_number"})
CARD_EXTRAS = frozenset({"card_expiry", "card_security_code"})
# The second listen decodes greedily without the temperature fallback, so nothing rejects a looping decode
# there; a reading that compresses more than this is dropped (_loops: faster-whisper's default threshold).
LOOP_COMPRESSION_RATIO = 2.4
# A loop can be short enough to pass that check: the same number this many times in a row ("1, 1, 1, 1, 1,
# 1, 1, 1, 1, 6, 4, …" for an order number's "five one double two, seven one …", seed 61) is one too; no
# card, SSN or phone number is read that way ("double", "triple" at most).
LOOP_REPEATS = 5

Words = list[tuple[float, float, str]]  # (start, end, text), seconds on the call's timeline
Samples = npt.NDArray[np.float32]
# Decodes each clip on its own and gives its words, timed from the clip's start.
Redecode = Callable[[list[Samples]], list[Words]]


@dataclass(frozen=True)
class Stretch:
    """Where to listen again: a channel (its position in the result) from start_s to end_s."""

    channel: int
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Heard:
    """What the second pass found: an entity type on a channel, from start_s to end_s."""

    type: str
    channel: int
    start_s: float
    end_s: float


def _cue_times(heard: Sequence[Sequence[Token]]) -> list[tuple[int, float]]:
    """(channel, when) of every cue for a type (an order number's naming is none)."""
    return sorted((channel, cue.at_s) for channel, toks in enumerate(heard) for cue in cues_in(toks)
                  if cue.type != "reference")  # fmt: skip


def stretches(
    heard: Sequence[Sequence[Token]], duration_s: float, found: Sequence[Heard] = ()
) -> list[Stretch]:
    """Where a number was asked for, per channel: a run of digits within CUE_S after a cue on any
    channel, and the first answer on each channel to a cue on another channel (its words up to a pause of
    ANSWER_GAP_S, within CUE_S after the cue); each padded by PAD_BEFORE_S and PAD_AFTER_S, clipped to the
    audio, overlapping ones merged; none where the first reading found something already (`found`).
    `heard`: each channel's tokens (none: not listened to)."""
    cue_times = _cue_times(heard)
    out: list[Stretch] = []
    for channel, toks in enumerate(heard):
        spans: list[tuple[float, float]] = []
        for run in clusters(number_groups(toks), toks):
            start, end = run[0].start, run[-1].end
            if any(0.0 <= start - at <= CUE_S for _, at in cue_times):
                spans.append((start, end))
        for on, at in cue_times:
            if on == channel:  # the party asked answers on the other channel; a number said here is a run
                continue
            answer = _first_answer(toks, at, at + CUE_S)
            if answer:
                spans.append((answer[0].start, answer[-1].end))
        out += [
            Stretch(
                channel,
                round(max(0.0, start - PAD_BEFORE_S), 3),
                round(min(duration_s, end + PAD_AFTER_S), 3),
            )
            for start, end in spans
            if not any(h.channel == channel and h.start_s < end and h.end_s > start for h in found)
        ]
    return _merged(out)


def _first_answer(toks: Sequence[Token], after_s: float, until_s: float) -> list[Token]:
    answer: list[Token] = []
    for tok in toks:
        if not after_s < tok.start <= until_s:
            continue
        if answer and tok.start - answer[-1].end > ANSWER_GAP_S:
            break
        answer.append(tok)
    return answer


def _merged(found: list[Stretch]) -> list[Stretch]:
    out: list[Stretch] = []
    for s in sorted(found, key=lambda s: (s.channel, s.start_s)):
        if out and out[-1].channel == s.channel and s.start_s <= out[-1].end_s:
            out[-1] = Stretch(s.channel, out[-1].start_s, max(out[-1].end_s, s.end_s))
        else:
            out.append(s)
    return out


def clips(channels: Sequence[Samples], found: Sequence[Stretch]) -> list[Samples]:
    """The audio of each stretch, a copy (the channels may be memory-mapped files)."""
    return [
        np.array(
            channels[s.channel][round(s.start_s * SAMPLE_RATE_HZ) : round(s.end_s * SAMPLE_RATE_HZ)],
            dtype=np.float32,
        )
        for s in found
    ]


def shifted(words: Words, start_s: float) -> Words:
    """A clip's words on the call's timeline."""
    return [(round(float(a) + start_s, 3), round(float(b) + start_s, 3), text) for a, b, text in words]


def stands(finding: Finding) -> bool:
    """Whether a finding of the first reading keeps the second listen away from its words, and stands
    against what the second listen finds there (speechsvc.redact.apply): every type but a person name (a
    misheard "double eight" the names model took for one is still part of the number)."""
    return finding.type not in names.ENTITIES


def _loops(words: Words) -> bool:
    """Whether a clip's reading is a loop ("5 to 0 to 5 to 0 to …", seen on an order number read again):
    its text compresses as faster-whisper's temperature fallback would have rejected it
    (LOOP_COMPRESSION_RATIO, the library's `compression_ratio_threshold`), or it repeats a number
    LOOP_REPEATS times in a row. Such a reading holds digits
    enough for a card by chance, so it is no reading."""
    from faster_whisper.transcribe import get_compression_ratio

    text = "".join(text for _, _, text in words).strip()
    return bool(text) and (get_compression_ratio(text) > LOOP_COMPRESSION_RATIO or _repeats(words))


def _repeats(words: Words) -> bool:
    """Whether the reading holds the same number LOOP_REPEATS times in a row, nothing between them."""
    run = 1
    groups = number_groups(tokens(words))
    for before, group in itertools.pairwise(groups):
        same = group.digits == before.digits and group.first == before.last + 1
        run = run + 1 if same else 1
        if run >= LOOP_REPEATS:
            return True
    return False


def listen_again(
    reading: Reading,
    channels: Sequence[Samples],
    redecode: Redecode,
) -> list[Heard]:
    """Decode the likely stretches of the English channels again (`redecode`, each stretch a clip of its
    own) where the first reading found nothing, and detect the reading's entities on those words with its
    cues; the findings timed on the call, those of a type in OWN_CUE only after its cue. (The detector
    reads English numbers only.)"""
    heard = [
        toks if language == "en" else []
        for toks, language in zip(reading.tokens, reading.languages, strict=True)
    ]
    first = [
        Heard(f.type, channel, toks[f.first].start, toks[f.last].end)
        for channel, (toks, found) in enumerate(zip(heard, reading.found, strict=True))
        if toks
        for f in found
        if stands(f)
    ]
    duration_s = max(len(c) for c in channels) / SAMPLE_RATE_HZ
    found = stretches(heard, duration_s, first)
    if not found:
        return []
    out: list[Heard] = []
    entities = reading.redaction.entities
    for stretch, again in zip(found, redecode(clips(channels, found)), strict=True):
        if _loops(again):
            continue
        timed = shifted(again, stretch.start_s)
        found_here = [
            Heard(f.type, stretch.channel, timed[f.first][0], timed[f.last][1])
            for f in find(tokens(timed), entities, reading.cues)
        ]
        kept = [h for h in found_here if h.type not in OWN_CUE or cued(reading.cues, h.type, h.start_s)]
        card = any(h.type == "credit_card" for h in kept)
        out += [h for h in kept if card or h.type not in CARD_EXTRAS]
    return out
