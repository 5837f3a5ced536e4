"""Redaction of a live stream's results (issue 22, item 6), one channel at a time.

Finals are redacted before they are sent, with the detector of the file jobs run over the channel's
recent finals and the new one, so that an expiry or a code said after the card in a later final is still
found. A number read in groups over two finals ("4539 1488" … "0343 6467") is caught by holding back a
final that ends in a number still open (digits the detector has not yet called a card, an SSN or a phone
number, with nothing but fillers after them): it goes out, redacted over both, with the next final of
its channel, or alone once HOLD_S of the stream has passed without one. Interims are sent redacted, and
suppressed while a span may be open: while a final is held, or when their words hold digits (or, with
e-mail addresses in the classes, an "at" or "dot") outside a redacted span. Nothing here stores a value;
the unredacted words of the last CONTEXT_S stay in memory only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from speechsvc.redact import MARKERS, MASK, Redaction, names
from speechsvc.redact.apply import merge
from speechsvc.redact.cues import CUE_S, Cue, cues_in
from speechsvc.redact.detect import NEAR_CARD_S, Finding, find
from speechsvc.redact.spoken import FILLERS, MAX_JOIN_GAP_S, Token, clusters, number_groups, tokens
from speechsvc.results.deepgram_words import DgWord, bare

HOLD_S = MAX_JOIN_GAP_S  # of the stream, at most, that a final ending in an open number waits for the next
CONTEXT_S = NEAR_CARD_S  # of earlier finals the detector reads with a new one
DIGIT_ENTITIES = frozenset({"credit_card", "ssn", "phone_number", "card_expiry", "card_security_code"})
EMAIL_WORDS = frozenset({"at", "dot", "@"})
_TRAILING = ".,;:!?"

Emit = Callable[[list[DgWord]], None]  # sends one final's (redacted) words


@dataclass
class _Held:
    words: list[DgWord]
    emit: Emit


class LiveRedactor:
    """One channel's finals and interims, redacted (see the module's docstring)."""

    def __init__(self, redaction: Redaction, cues: list[Cue]) -> None:
        self.redaction = redaction
        # Names are not looked for here: the model would run on the event loop for every final and interim
        # (a few ms each), and an interim would show a name before the final's longer reading hid it. A
        # saved stream is redacted again as a file job, names included.
        self._entities = redaction.entities - names.ENTITIES
        self._cues = cues  # shared by the stream's channels: the agent asks, the customer answers
        self._context: list[DgWord] = []  # earlier finals' words, as heard, sent already (redacted)
        self._held: list[_Held] = []
        self._due = False  # release_due found the held finals due on its last call

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def final(self, words: list[DgWord], emit: Emit, *, hold: bool = True) -> None:
        """A new final: emitted (with any held before it) redacted now, or held while its number is open.
        `hold=False` (a Finalize, the end of the stream) sends everything now."""
        self._held.append(_Held(words, emit))
        self._due = False
        self._cues += cues_in(_tokens(words))
        if words:
            horizon = words[-1].end - CUE_S
            self._cues[:] = [cue for cue in self._cues if cue.at_s >= horizon]
        pending = self._pending()
        spans = self._spans(pending)
        if hold and self._open_at_end(pending, spans):
            return
        self._send(spans)

    def release_due(self, clock_s: float, speaking: bool) -> None:
        """Held finals go out once HOLD_S of the stream has passed after their last word with the channel
        silent, seen so on two calls in a row (the session's ticks): an utterance the endpointer has just
        closed is on its way to the session in between, and its final may hold the rest of the number."""
        due = bool(self._held) and not speaking and clock_s >= self._held_end() + HOLD_S
        if due and self._due:
            self._send(self._spans(self._pending()))
        self._due = due

    def flush(self) -> None:
        """Everything held goes out (the end of the stream)."""
        if self._held:
            self._send(self._spans(self._pending()))

    def interim(self, words: list[DgWord]) -> list[DgWord] | None:
        """The interim's words redacted, or None: suppressed while a span may be open."""
        if self._held:
            return None
        spans = self._spans(words)
        covered = {i for f in spans for i in range(f.first, f.last + 1)}
        toks = _tokens(words)
        if self._entities & DIGIT_ENTITIES and any(
            i not in covered for g in number_groups(toks) if not g.amount for i in range(g.first, g.last + 1)
        ):
            return None
        if "email" in self._entities and any(
            i not in covered and set(t.parts) & EMAIL_WORDS for i, t in enumerate(toks)
        ):
            return None
        return _redacted(words, spans, self.redaction)

    # --- inside -------------------------------------------------------------------------------------------

    def _pending(self) -> list[DgWord]:
        """The words of every final held, in order."""
        return [w for held in self._held for w in held.words]

    def _spans(self, pending: list[DgWord]) -> list[Finding]:
        """Findings in `pending` (indices into it), read after the channel's recent context."""
        context = self._context
        words = [*context, *pending]
        toks = _tokens(words)
        found = merge(find(toks, self._entities, self._cues))
        offset = len(context)
        return [
            Finding(f.type, max(f.first, offset) - offset, f.last - offset) for f in found if f.last >= offset
        ]

    def _open_at_end(self, pending: list[DgWord], spans: list[Finding]) -> bool:
        """Digits at the end of `pending` (fillers after them at most) that no span covers yet."""
        if not self._entities & DIGIT_ENTITIES or not pending:
            return False
        words = [*self._context, *pending]
        toks = _tokens(words)
        runs = clusters(number_groups(toks), toks)
        if not runs:
            return False
        last = runs[-1][-1]
        offset = len(self._context)
        if last.last < offset or any(f.first <= last.last - offset <= f.last for f in spans):
            return False
        return all(part in FILLERS for tok in toks[last.last + 1 :] for part in tok.parts)

    def _held_end(self) -> float:
        ends = [w.end for w in self._pending()]
        return max(ends) if ends else 0.0

    def _send(self, spans: list[Finding]) -> None:
        at = 0
        for held in self._held:
            mine = [
                Finding(f.type, max(f.first, at) - at, min(f.last, at + len(held.words) - 1) - at)
                for f in spans
                if f.last >= at and f.first < at + len(held.words)
            ]
            held.emit(_redacted(held.words, mine, self.redaction))
            at += len(held.words)
            self._context += held.words
        self._held = []
        if self._context:
            horizon = self._context[-1].end - CONTEXT_S
            self._context = [w for w in self._context if w.end >= horizon]


def _tokens(words: list[DgWord]) -> list[Token]:
    """The detector's tokens of a live final's words (their punctuated form, as the file jobs' text)."""
    return tokens([(w.start, w.end, " " + w.punctuated) for w in words])


def _redacted(words: list[DgWord], spans: list[Finding], redaction: Redaction) -> list[DgWord]:
    """Each span of `words` as one word, the marker (or the mask), timed from its first word to its last."""
    out: list[DgWord] = []
    starts = {f.first: f for f in spans}
    skip = {i for f in spans for i in range(f.first + 1, f.last + 1)}
    for index, word in enumerate(words):
        if index in skip:
            continue
        span = starts.get(index)
        if span is None:
            out.append(word)
            continue
        last = words[span.last]
        text = MASK if redaction.substitution == "mask" else MARKERS[span.type]
        trail = last.punctuated[-1:]
        confidence = min(w.confidence for w in words[span.first : span.last + 1])
        out.append(DgWord(bare(text) or text, text + (trail if trail in _TRAILING else ""), word.start, last.end,
                          confidence, word.channel, word.speaker))  # fmt: skip
    return out
