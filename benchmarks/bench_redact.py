"""Redaction (speechsvc.redact) on calls with planted entities read in varied spoken forms, and on calls with
ordinary numbers only: recall per class, false positives per call, and what redaction costs per audio
minute against the transcription itself.

    python benchmarks/bench_redact.py [--model tiny.en] [--calls 10] [--seed 1]

Each call is generated (espeak-ng, two voices, needs Debian's espeak-ng): the agent asks on channel 0,
the customer answers on channel 1 with one planted entity, read in one of several forms (digits in
groups, as pairs "forty-five thirty-nine", with "double" and "oh", over two turns with the agent's "go on"
between). A planted entity is found when the result lists a redaction of its type on the customer's
channel overlapping the line. The negative calls hold amounts, dates, percentages, times, quantities and a
16-digit order number that fails the Luhn check: every redaction there (pii) is a false positive.
"""

from __future__ import annotations

import argparse
import copy
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from speechsvc.asr.engine import TranscribeOptions
from speechsvc.audio.decode import decode_channels
from speechsvc.audio.encode import encode
from speechsvc.audio.layout import ChannelRef
from speechsvc.config import Config
from speechsvc.jobs.model import JobRequest
from speechsvc.redact import Redaction
from speechsvc.redact.apply import redact_result
from speechsvc.redact.audio import redacted_channels
from speechsvc.redact.detect import find, luhn_valid, ssn_valid
from speechsvc.redact.spoken import tokens
from speechsvc.service.pipeline import run_pipeline
from tests.conftest import write_wav

RATE = 16000
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEENS = [
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
AREA_CODES = ("212", "415", "312", "617", "206", "303", "512")
NAMES = ("john", "mary", "peter", "anna", "james", "linda")
DOMAINS = ("example", "gmail", "outlook", "company")
NEGATIVES = (
    "I paid forty five dollars and twenty cents on the fifth of March.",
    "That is about twenty percent more than last year, in twenty twenty four.",
    "My order number is {order}.",
    "We have three hundred and twelve items, delivered at ten thirty.",
    "It was the twelfth of June, nineteen ninety nine, and it cost two thousand pounds.",
)


def card(rng: random.Random) -> str:
    body = rng.choice("45") + "".join(rng.choice("0123456789") for _ in range(14))
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


def non_luhn(rng: random.Random) -> str:
    number = card(rng)
    return number[:-1] + str((int(number[-1]) + 1) % 10)


def ssn(rng: random.Random) -> str:
    while not ssn_valid(number := "".join(rng.choice("0123456789") for _ in range(9))):
        pass
    return number


def digits_said(digits: str, form: str) -> str:
    if form == "pairs":
        out = []
        for i in range(0, len(digits) - 1, 2):
            tens, unit = int(digits[i]), int(digits[i + 1])
            if tens == 0:
                out.append(f"oh {WORDS[unit]}")
            elif tens == 1:
                out.append(TEENS[unit])
            else:
                out.append(TENS[tens] + ("" if unit == 0 else f" {WORDS[unit]}"))
        if len(digits) % 2:
            out.append(WORDS[int(digits[-1])])
        return ", ".join(out)
    said, i = [], 0
    while i < len(digits):
        word = "oh" if form == "double" and digits[i] == "0" else WORDS[int(digits[i])]
        if form == "double" and i + 1 < len(digits) and digits[i + 1] == digits[i]:
            said.append(f"double {word}")
            i += 2
        else:
            said.append(word)
            i += 1
        if i % 4 == 0 and i < len(digits):
            said[-1] += ","
    return " ".join(said)


def plan(rng: random.Random, calls: int) -> list[tuple[str, list[tuple[str, str]]]]:
    """(class, lines) per call: lines of (who, text); the customer's planted line is the one with the entity."""
    out: list[tuple[str, list[tuple[str, str]]]] = []
    forms = ("groups", "pairs", "double")
    for n in range(calls):
        number = card(rng)
        if n % 4 == 3:  # over two turns
            out.append(("credit_card", [("agent", "The long number please."),
                                        ("customer", f"It is {digits_said(number[:8], forms[n % 3])}."),
                                        ("agent", "Go on."), ("customer", f"{digits_said(number[8:], forms[n % 3])}.")]))  # fmt: skip
        else:
            out.append(("credit_card", [("agent", "Can I take the card number?"),
                                        ("customer", f"Yes, it's {digits_said(number, forms[n % 3])}.")]))  # fmt: skip
        number = ssn(rng)
        said = ", ".join(digits_said(part, forms[n % 3]) for part in (number[:3], number[3:5], number[5:]))
        out.append(("ssn", [("agent", "And your social security number?"), ("customer", f"It's {said}.")]))
        phone = rng.choice(AREA_CODES) + str(rng.randint(200, 999)) + f"{rng.randint(0, 9999):04d}"
        said = ", ".join(digits_said(part, forms[n % 2 * 2]) for part in (phone[:3], phone[3:6], phone[6:]))
        out.append(
            ("phone_number", [("agent", "A number to call you back?"), ("customer", f"Sure, {said}.")])
        )
        email = f"{rng.choice(NAMES)} dot {rng.choice(NAMES)} at {rng.choice(DOMAINS)} dot com"
        out.append(("email", [("agent", "And your email address?"), ("customer", f"It's {email}.")]))
        negative = rng.choice(NEGATIVES).format(order=digits_said(non_luhn(rng), forms[n % 3]))
        out.append(("negative", [("agent", "How can I help?"), ("customer", negative)]))
    return out


def speak(text: str, voice: str, scratch: Path) -> np.ndarray:
    wav = scratch / "line.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "160", "-w", str(wav), text], check=True)
    (samples,) = decode_channels(wav, "audio/wav", [ChannelRef(0, 0)], max_duration_s=120)
    return samples


def build(lines: list[tuple[str, str]], scratch: Path) -> tuple[Path, list[tuple[float, float]]]:
    """The call as a two-channel WAV, and the customer's line times."""
    clips = [(who, speak(text, "en-us+f2" if who == "agent" else "en-us+m3", scratch)) for who, text in lines]
    gap = int(0.8 * RATE)
    total = sum(len(c) for _, c in clips) + gap * (len(clips) + 1)
    channels = [np.zeros(total, dtype=np.float32), np.zeros(total, dtype=np.float32)]
    at, spans = gap, []
    for who, samples in clips:
        channels[0 if who == "agent" else 1][at : at + len(samples)] = samples
        if who == "customer":
            spans.append((at / RATE, (at + len(samples)) / RATE))
        at += len(samples) + gap
    return write_wav(scratch / "call.wav", channels), spans


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--calls", type=int, default=10, help="calls per class (default 10)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    from speechsvc.app import build_registry

    scratch = Path(tempfile.mkdtemp(prefix="bench-redact-"))
    config = Config(data_dir=scratch / "data", model=args.model)
    registry = build_registry(config)
    transcriber = registry.get()
    request = JobRequest(args.model, labels=("agent", "customer"), crosstalk="off",
                         options=TranscribeOptions(language="en", word_timestamps=True))  # fmt: skip
    redaction = Redaction(("pii",))
    found: dict[str, list[bool]] = {}
    false_positives: list[int] = []
    in_text: dict[str, list[bool]] = {}  # the detector on the words as planted (no recognition errors)
    text_false_positives = 0
    audio_s = transcribe_s = redact_s = audio_redact_s = 0.0
    for kind, lines in plan(random.Random(args.seed), args.calls):
        path, spans = build(lines, scratch)
        started = time.perf_counter()
        result = run_pipeline("bench", path, "audio/wav", request, transcriber, max_duration_s=600, max_channels=2,
                              limits=config.decode_limits, scratch_dir=scratch / "decoded",
                              on_progress=lambda _: None)  # fmt: skip
        transcribe_s += time.perf_counter() - started
        audio_s += result["duration_s"]
        unredacted = copy.deepcopy(result)
        started = time.perf_counter()
        redacted = redact_result(unredacted, redaction)
        redact_s += time.perf_counter() - started
        decoded = decode_channels(path, "audio/wav", [ChannelRef(0, 0), ChannelRef(0, 1)], max_duration_s=600)
        marks = [(1 if r["label"] == "customer" else 0, r["start"], r["end"]) for r in redacted["redactions"]]
        started = time.perf_counter()
        encode(redacted_channels(decoded, marks, "beep"), RATE, "flac")
        audio_redact_s += time.perf_counter() - started
        said = [(0.0, 0.0, " " + w) for who, text in lines if who == "customer" for w in text.split()]
        on_text = {f.type for f in find(tokens(said), redaction.entities)}
        if kind == "negative":
            false_positives.append(len(redacted["redactions"]))
            text_false_positives += len(on_text)
            continue
        in_text.setdefault(kind, []).append(kind in on_text)
        hit = any(r["type"] == kind and r["label"] == "customer" and r["start"] < spans[-1][1]
                  and r["end"] > spans[0][0] for r in redacted["redactions"])  # fmt: skip
        found.setdefault(kind, []).append(hit)
        if not hit:
            customer = [e["text"] for e in redacted["timeline"] if e["label"] == "customer"]
            print(f"missed {kind}: said {lines[1:]!r}\n  heard {customer!r}", file=sys.stderr)
    registry.close()
    print(f"model {args.model}, {sum(len(v) for v in found.values()) + len(false_positives)} calls, "
          f"{audio_s / 60:.1f} audio minutes (both channels counted once per call)")  # fmt: skip
    print(f"{'class':<14}{'calls':>6}{'found':>7}{'recall':>8}{'on the planted text':>21}")
    for kind, hits in found.items():
        print(f"{kind:<14}{len(hits):>6}{sum(hits):>7}{sum(hits) / len(hits):>8.3f}"
              f"{sum(in_text[kind]) / len(in_text[kind]):>21.3f}")  # fmt: skip
    print(f"negative calls: {len(false_positives)}, false positives: {sum(false_positives)} "
          f"({sum(false_positives) / max(1, len(false_positives)):.2f} per call; on the planted text: "
          f"{text_false_positives})")  # fmt: skip
    minutes = audio_s / 60
    print(f"transcription: {transcribe_s / minutes:.2f} s per audio minute")
    print(f"text redaction: {1000 * redact_s / minutes:.2f} ms per audio minute "
          f"({100 * redact_s / transcribe_s:.3f} % of transcription)")  # fmt: skip
    print(f"audio copy (beep + FLAC): {1000 * audio_redact_s / minutes:.1f} ms per audio minute "
          f"({100 * audio_redact_s / transcribe_s:.2f} % of transcription)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
