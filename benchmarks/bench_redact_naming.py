"""The recall risk of the naming rule (speechsvc.redact.cues.named_here): a customer who names their own
card or phone number before reading it ("My card number is …", "My phone number is …", "The long number
is …") must not have it named away when the decoder mishears the naming word ("my current number").

    python benchmarks/bench_redact_naming.py [--model tiny.en] [--calls 48] [--seed 8]

Calls are built as bench_redact.py builds them (espeak-ng: the agent's "How can I help?" on channel 0,
no cue; the customer on channel 1 in one of its voices and speeds, the number in one of its spoken
forms); half the calls say "My card number is", a quarter "My phone number is", a quarter "The long
number is". Per call: whether named_here fired on the customer's words (the naming word heard as one
outside NAMING_NEUTRAL), and whether the first reading redacts the number as its type. The misses that
were named away are the rule's cost; the rest are recognition (digits misheard without a cue).
A probe of 36 calls (seed 7) gave "My current number is …" once in twelve "my card number" calls, which
made "current" and the decoder's other words for "card" neutral; seed 8 onwards were run after that.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_redact import (  # calls as it makes them
    CUSTOMER_VOICES,
    SPEEDS_WPM,
    CallDecoder,
    build,
    card,
    digits_said,
    phone,
)

from speechsvc.redact import Redaction
from speechsvc.redact.apply import redact_result
from speechsvc.redact.cues import named_here
from speechsvc.redact.reading import read

NAMINGS = (  # (the customer's words before the number, its type), in turn: card twice, phone, long
    ("My card number is", "credit_card"),
    ("My card number is", "credit_card"),
    ("My phone number is", "phone_number"),
    ("The long number is", "credit_card"),
)
FORMS = ("groups", "pairs", "double")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--calls", type=int, default=48)
    parser.add_argument("--seed", type=int, default=8, help="7 was read while tuning (default 8)")
    args = parser.parse_args()
    decoder = CallDecoder(args.model, "bench-naming-")
    rng = random.Random(args.seed)
    redaction = Redaction(("pii",))
    rows: dict[str, list[tuple[bool, bool]]] = {}  # naming: (named away, found)
    for n in range(args.calls):
        lead, kind = NAMINGS[n % len(NAMINGS)]
        number = card(rng) if kind == "credit_card" else phone(rng)
        lines = [("agent", "How can I help?"), ("customer", f"{lead} {digits_said(number, FORMS[n % 3])}.")]
        voice, speed = rng.choice(CUSTOMER_VOICES), rng.choice(SPEEDS_WPM)
        path, _ = build(lines, voice, speed, decoder.scratch)
        result, _ = decoder(path)
        reading = read(result, redaction)
        named = bool(named_here(reading.tokens[1]))
        found = any(r["type"] == kind for r in redact_result(result, reading)["redactions"])
        rows.setdefault(lead, []).append((named, found))
        if named or not found:
            heard = [e["text"] for e in result["timeline"] if e["label"] == "customer"]
            print(
                f"{'named away' if named else 'missed'} ({voice}, {speed} wpm): heard {heard!r}",
                file=sys.stderr,
            )
    decoder.close()
    print(f"model {args.model}, seed {args.seed}, {args.calls} calls, the agent giving no cue")
    print(f"{'naming':<22}{'calls':>6}{'named away':>12}{'found':>7}{'recall':>8}")
    for lead, got in rows.items():
        found = sum(f for _, f in got)
        print(f"{lead:<22}{len(got):>6}{sum(n for n, _ in got):>12}{found:>7}{found / len(got):>8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
