"""Two-party support calls with known times, laid out from the dialogue clips of fixtures/dialogue/ (an
agent and a customer, one espeak-ng voice each, lines.txt): strict turn-taking with a pause inside the
customer's turn in which the agent speaks, a barge-in with real overlap, and one exchange repeated for
minutes. Two channels (agent 0, customer 1), or one. The truth is each line's speech (its clip's audible
part) on the call's timeline."""

from __future__ import annotations

import dataclasses
from functools import cache

import numpy as np
import numpy.typing as npt

from speechsvc.audio.decode import decode_channels
from speechsvc.audio.layout import ChannelRef
from tests.conftest import FIXTURES

Samples = npt.NDArray[np.float32]
RATE = 16000
DIALOGUE = FIXTURES / "dialogue"
AUDIBLE = 0.01  # a clip's speech: from the first to the last 10 ms frame this loud (peak amplitude)


@dataclasses.dataclass(frozen=True)
class Line:
    who: str  # agent | customer
    id: str
    text: str


@dataclasses.dataclass(frozen=True)
class Said:
    start: float
    end: float
    who: str
    text: str


@dataclasses.dataclass(frozen=True)
class Call:
    channels: tuple[Samples, Samples]  # agent, customer
    truth: tuple[Said, ...]  # in time order

    @property
    def mono(self) -> Samples:
        return (self.channels[0] + self.channels[1]).astype(np.float32)

    def texts(self, who: str) -> str:
        return " ".join(said.text for said in self.truth if said.who == who)


@cache
def lines() -> dict[str, Line]:
    found = {}
    for row in (DIALOGUE / "lines.txt").read_text().splitlines():
        who, line_id, text = row.split("\t")
        found[line_id] = Line(who, line_id, text)
    return found


@cache
def clip(line_id: str) -> tuple[Samples, float, float]:
    """The line's audio, and where its speech starts and ends in it (seconds)."""
    (audio,) = decode_channels(
        DIALOGUE / f"{line_id}.ogg", "audio/ogg", [ChannelRef(0, 0)], max_duration_s=60
    )
    frames = np.abs(audio[: len(audio) // 160 * 160]).reshape(-1, 160).max(axis=1)
    loud = np.flatnonzero(frames >= AUDIBLE)
    return audio, loud[0] * 0.01, (loud[-1] + 1) * 0.01


# The exchange: (line, seconds from the end of the previous line's speech to this line's start of speech).
# c2 -> a3 -> c3: the customer pauses in the middle of a turn and the agent speaks in the pause.
TURN_TAKING = (("a1", 0.0), ("c1", 0.7), ("a2", 0.6), ("c2", 0.8), ("a3", 0.5), ("c3", 0.5), ("a4", 0.7),
               ("c4", 0.6), ("a5", 0.6), ("c5", 0.7), ("a6", 0.5), ("c6", 0.6))  # fmt: skip
REPEAT_GAP_S = 1.0  # before the first line of the script, when it starts again
# The customer answers 1.2 s before the agent's question ends: real overlap.
BARGE_IN = (("a1", 0.0), ("c1", -1.2), ("a2", 0.6), ("c3", 0.7))


def call(script: tuple[tuple[str, float], ...] = TURN_TAKING, repeat: int = 1, lead_s: float = 0.5,
         tail_s: float = 1.0) -> Call:  # fmt: skip
    """Lay the script's lines on the agent's and the customer's channels, `repeat` times over."""
    placed: list[tuple[float, str]] = []  # start of each clip, line id
    truth: list[Said] = []
    speech_end = lead_s
    for _ in range(repeat):
        for line_id, gap_s in script:
            audio, first, last = clip(line_id)
            speech_start = speech_end + (gap_s or REPEAT_GAP_S) if truth else lead_s
            placed.append((speech_start - first, line_id))
            truth.append(Said(round(speech_start, 3), round(speech_start + last - first, 3), lines()[line_id].who,
                              lines()[line_id].text))  # fmt: skip
            speech_end = speech_start + last - first
    length = int((speech_end + tail_s) * RATE) + RATE
    channels = (np.zeros(length, np.float32), np.zeros(length, np.float32))
    for start_s, line_id in placed:
        audio = clip(line_id)[0]
        at = round(start_s * RATE)
        channels[0 if lines()[line_id].who == "agent" else 1][at : at + len(audio)] += audio
    return Call(channels, tuple(sorted(truth, key=lambda said: said.start)))


def order_errors(entries: list[tuple[float, float, str]], truth: tuple[Said, ...]) -> int:
    """Lines read out of order: for each timeline entry (start, end, who), the other party's lines whose
    middle falls inside it (the entry reads them after what it says, or before)."""
    return sum(
        1
        for start, end, who in entries
        for said in truth
        if said.who != who and start < (said.start + said.end) / 2 < end
    )


def true_overlap_s(truth: tuple[Said, ...]) -> float:
    return sum(
        max(0.0, min(a.end, b.end) - max(a.start, b.start))
        for n, a in enumerate(truth)
        for b in truth[n + 1 :]
        if a.who != b.who
    )
