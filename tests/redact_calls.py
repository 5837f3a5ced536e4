"""Two-channel calls (agent 0, customer 1) built from the clips of fixtures/redact/ (make_redact.sh), with
planted card numbers, an expiry and code, an SSN, a phone number, an e-mail address and ordinary numbers
that must survive, each line at a known time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from speechsvc.audio.decode import decode_channels
from speechsvc.audio.layout import ChannelRef
from tests.conftest import FIXTURES, write_wav

Samples = npt.NDArray[np.float32]
RATE = 16000
REDACT = FIXTURES / "redact"
GAP_S = 0.8
CARD = "4539148803436467"  # Luhn-valid (a Visa test-style number)
ORDER = "4539148803436468"  # the same digits, last one off: fails Luhn, must survive pci
SSN = "123456789"
PHONE = "4155552671"
# The calls: (who, clip) in order; each line starts GAP_S after the previous one ended.
CALLS = {
    "card": [("agent", "a1"), ("customer", "c1"), ("agent", "a2"), ("customer", "c2")],
    "pii": [("customer", "c3"), ("customer", "c4"), ("customer", "c5")],
    "negative": [("customer", "c6"), ("customer", "c7")],
    "two_turns": [("agent", "a1"), ("customer", "c8"), ("agent", "a3"), ("customer", "c9")],
    # an SSN read in pairs, in another voice, slowly: tiny.en writes "5, 7, 10, 1, 59, 8, 10, 1, 7, 3"
    "ssn_in_pairs": [("agent", "a4"), ("customer", "c10")],
}


def clip(line_id: str) -> Samples:
    (samples,) = decode_channels(
        REDACT / f"{line_id}.ogg", "audio/ogg", [ChannelRef(0, 0)], max_duration_s=60
    )
    return samples


def build(name: str) -> tuple[list[Samples], list[tuple[str, str, float, float]]]:
    """The call's two channels and its lines (who, id, start s, end s)."""
    parts: list[tuple[str, str, Samples]] = [(who, line, clip(line)) for who, line in CALLS[name]]
    total = sum(len(s) for _, _, s in parts) + int(GAP_S * RATE) * (len(parts) + 1)
    channels = [np.zeros(total, dtype=np.float32), np.zeros(total, dtype=np.float32)]
    at = int(GAP_S * RATE)
    lines = []
    for who, line, samples in parts:
        channels[0 if who == "agent" else 1][at : at + len(samples)] = samples
        lines.append((who, line, at / RATE, (at + len(samples)) / RATE))
        at += len(samples) + int(GAP_S * RATE)
    return channels, lines


def write_call(name: str, path: Path) -> Path:
    return write_wav(path, build(name)[0])
