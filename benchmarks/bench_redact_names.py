"""Person names and postal addresses on what the decoder writes: does a named-entity model that ships in a
wheel (spaCy's en_core_web_sm, speechsvc.redact.names) find them, how often does it mark something else,
and what does it cost per audio minute against the transcription?

    python benchmarks/bench_redact_names.py [--model tiny.en] [--lines 10] [--seed 6] [--save F | --load F]
    python benchmarks/bench_redact_names.py --dense 3      # the cost on a dense call only

Each call is generated (espeak-ng, needs Debian's espeak-ng) as bench_redact.py builds them: the agent asks
on channel 0 in one voice, the customer answers on channel 1 in one of CUSTOMER_VOICES at one of
SPEEDS_WPM. Per seed, `--lines` calls of each kind: a person's name in one of four phrasings ("my name is
…", "this is … from <company>", "can I speak to Mr …", "yes, it's …"), a postal address (house number,
street, city, state or zip code, in three phrasings), and a negative line (products, companies named
after people, months, weekdays, cities and streets that are not an address). The decoded words go
through the model as the pipeline would read them; also the planted text itself (no recognition errors).

A name is *found* when a `person_name` finding (speechsvc.redact.detect.find, as the pipeline runs it)
touches a word the decoder wrote for it (the planted line and the decoded words aligned word by word,
difflib), *whole* when it covers every such word. An address likewise, its planted words being the house
number and the street; its finding comes from a rule on the model's entities here (address_spans), as
en_core_web_sm has no address label. A false positive is a finding that touches no planted word of its kind:
on the negative lines, on the agent's lines, and beside the planted entity. --save writes the decoded
words (JSON) and --load reads them back, so the scoring can be rerun without decoding.
"""

from __future__ import annotations

import argparse
import difflib
import json
import random
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_redact import CUSTOMER_VOICES, SPEEDS_WPM, CallDecoder, build  # calls as it makes them

from speechsvc.redact.detect import Finding, find
from speechsvc.redact.names import Recognizer, recognizer, text_of
from speechsvc.redact.spoken import Token, number_groups, tokens
from tests.conftest import write_wav

NAMES = frozenset({"person_name"})
TIMING_RUNS = 5
FIRST = ("Sarah", "Michael", "Priya", "Wei", "Olga", "Mohammed", "Siobhan", "Carlos", "Emily", "Daniel",
         "Aisha", "Thomas", "Laura", "Kenji", "Fatima", "Robert", "Hannah", "Luis", "Grace", "Dmitri")  # fmt: skip
LAST = ("Johnson", "Patel", "Chen", "Ivanova", "Hassan", "O'Brien", "Martinez", "Walker", "Nguyen", "Schmidt",
        "Okafor", "Thompson", "Rossi", "Tanaka", "Kowalski", "Miller", "Fischer", "Garcia", "Murphy", "Novak")  # fmt: skip
TITLES = ("Mr.", "Mrs.", "Ms.", "Doctor")
COMPANIES = ("Wells Fargo", "Dell", "Ford", "Chase", "Disney", "Johnson and Johnson", "Verizon", "Comcast",
             "Amazon", "Samsung", "Acme Insurance", "Harris Teeter")  # fmt: skip
PRODUCTS = ("Galaxy phone", "Kindle", "Echo speaker", "Surface laptop", "Prime membership", "iPad",
            "Roku stick", "Xbox")  # fmt: skip
STREETS = ("Maple", "Oak", "Cedar", "Washington", "Lincoln", "Park", "Lake", "Sunset", "Highland", "Willow")
SUFFIXES = ("Street", "Avenue", "Road", "Drive", "Lane", "Boulevard", "Court")
CITIES = (("Springfield", "Illinois"), ("Portland", "Oregon"), ("Austin", "Texas"), ("Denver", "Colorado"),
          ("Columbus", "Ohio"), ("Madison", "Wisconsin"), ("Albany", "New York"), ("Tucson", "Arizona"))  # fmt: skip
MONTHS = ("January", "March", "June", "August", "October", "December")
DAYS = ("Monday", "Tuesday", "Friday", "Saturday")
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# (agent's question, customer's answer): the answer's {name} or {address} is the planted entity
PERSON_LINES = (
    ("Who am I speaking with?", "My name is {name}."),
    ("Thank you for calling, how can I help?", "Hi, this is {name} from {company}."),
    ("Hello, how can I help?", "Can I speak to {title_name}, please?"),
    ("Can I have the name on the account?", "Yes, it's {name}."),
)
ADDRESS_LINES = (
    ("What is your address?", "I live at {address}."),
    ("Where should we send it?", "Please send it to {address}, thank you."),
    ("And your postal address?", "It's {address}."),
)
NEGATIVE_LINES = (
    ("How can I help?", "I bought a {product} from {company} in {month}."),
    ("How can I help?", "My {product} stopped working after the update on {day}."),
    ("How can I help?", "We moved from {city} last year, and the service in {city2} is slow."),
    ("How can I help?", "I want to cancel my {company} plan before {month}."),
    ("How can I help?", "The {company} store on {street} {suffix} was closed on {day}."),
    ("Anything else?", "Can you send the invoice to our office in {city}?"),
    ("Anything else?", "I spoke to your colleague on {day}, she said it would take three days."),
    ("Anything else?", "Is the {product} available in blue, or only in black?"),
)


def house_number(rng: random.Random) -> str:
    """As people say it: "42" forty-two, "1427" fourteen twenty-seven (written "14 27" for espeak-ng)."""
    number = rng.choice([rng.randint(2, 99), rng.randint(100, 999), rng.randint(1000, 9899)])
    written = str(number)
    if number >= 1000 and number % 100 >= 10:
        return f"{written[:2]} {written[2:]}"
    return written


def plan(rng: random.Random, lines: int) -> list[tuple[str, str, str, str, str]]:
    """(kind, agent's line, customer's line, the planted entity as said, customer voice) per call."""
    out = []
    for n in range(lines):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        question, answer = PERSON_LINES[n % len(PERSON_LINES)]
        title_name = f"{rng.choice(TITLES)} {last}"
        name = f"{first} {last}"
        said = answer.format(name=name, title_name=title_name, company=rng.choice(COMPANIES))
        out.append(("person", question, said, last if "{title_name}" in answer else name))  # not the title
        spoken_ = house_number(rng)
        city, state = rng.choice(CITIES)
        street = f"{rng.choice(STREETS)} {rng.choice(SUFFIXES)}"
        zip_code = " ".join(DIGIT_WORDS[int(d)] for d in f"{rng.randint(10000, 99999)}")
        tail = f"{city}, {state}" if n % 2 else f"{city}, {zip_code}"
        address = f"{spoken_} {street}, {tail}"
        question, answer = ADDRESS_LINES[n % len(ADDRESS_LINES)]
        out.append(("address", question, answer.format(address=address), f"{spoken_} {street}"))
        question, answer = NEGATIVE_LINES[n % len(NEGATIVE_LINES)]
        city, city2 = rng.sample([c for c, _ in CITIES], 2)
        said = answer.format(product=rng.choice(PRODUCTS), company=rng.choice(COMPANIES), month=rng.choice(MONTHS),
                             day=rng.choice(DAYS), city=city, city2=city2, street=rng.choice(STREETS),
                             suffix=rng.choice(SUFFIXES))  # fmt: skip
        out.append(("negative", question, said, ""))
    return [
        (kind, q, a, e, rng.choice(CUSTOMER_VOICES) + f"@{rng.choice(SPEEDS_WPM)}") for kind, q, a, e in out
    ]


def decode(
    plans: list[tuple[str, str, str, str, str]], model: str
) -> tuple[list[list[list[Any]]], float, float]:
    """Each call's words per channel [(start, end, word)], the audio seconds and the seconds decoding took."""
    decoder = CallDecoder(model, "bench-names-")
    calls, audio_s, took_s = [], 0.0, 0.0
    for _, question, answer, _, voice in plans:
        name, speed = voice.split("@")
        path, _ = build([("agent", question), ("customer", answer)], name, int(speed), decoder.scratch)
        result, took = decoder(path)
        took_s += took
        audio_s += result["duration_s"]
        calls.append([[[w["start"], w["end"], w["word"]] for seg in doc["segments"] for w in seg["words"]]
                      for doc in result["channels"]])  # fmt: skip
    decoder.close()
    return calls, audio_s, took_s


# Addresses: en_core_web_sm has no address label, and marks a street as FAC only now and then. A street is
# a house number (written or said: "607", "six hundred and seven", "fourteen sixteen") and up to
# STREET_WORDS words ending in a street suffix (or a FAC entity); the address runs on over what follows it
# in the sentence: the model's GPE, LOC and FAC (city, state), numbers (a zip code, a flat), and the
# words of a flat or a zip code.
STREET_SUFFIXES = frozenset({
    "street", "st", "avenue", "ave", "road", "rd", "drive", "dr", "lane", "ln", "boulevard", "blvd", "court",
    "ct", "way", "place", "pl", "terrace", "circle", "parkway", "highway", "square", "close", "crescent",
})  # fmt: skip
ADDRESS_WORDS = frozenset({"apartment", "apt", "suite", "unit", "flat", "floor", "zip", "code", "postcode"})
STREET_WORDS = 4
ADDRESS_TAIL_WORDS = 12


def address_spans(toks: Sequence[Token], recognize: Recognizer) -> list[Finding]:
    """An `address` finding for each house number + street (+ city, state, zip) in the words."""
    text, starts = text_of(toks)
    labels: list[str] = [""] * len(toks)
    for begin, end, label in recognize(text):
        for n, start in enumerate(starts):
            if start < end and start + len(toks[n].raw) > begin:
                labels[n] = label
    in_number = {i for g in number_groups(toks) if not g.amount for i in range(g.first, g.last + 1)}
    out: list[Finding] = []
    for group in number_groups(toks):
        if group.amount or (out and group.first <= out[-1].last):
            continue
        last = None
        for m in range(group.last + 1, min(group.last + 1 + STREET_WORDS, len(toks))):
            word = toks[m].raw.strip(".,;:!?").lower()
            if word in STREET_SUFFIXES or labels[m] == "FAC":
                last = m
            elif labels[m] in ("GPE", "LOC") and m > group.last + 1 and toks[m - 1].raw.endswith(","):
                # a misheard suffix ("137 Lincoln Lord, Portland"): capitalised words, a comma, a city
                if all(toks[k].raw[:1].isupper() for k in range(group.last + 1, m)):
                    last = m - 1
                break
            if toks[m].raw[-1:] in ".;:!?" or (toks[m].raw[-1:] == "," and last is not None):
                break
        if last is None:
            continue
        m = last + 1  # what follows in the sentence: the city, the state, the zip code, a flat
        while (
            m < len(toks) and m - last <= ADDRESS_TAIL_WORDS and not toks[m - 1].raw.endswith((".", "?", "!"))
        ):
            word = toks[m].raw.strip(".,;:!?").lower()
            if not (labels[m] in ("GPE", "LOC", "FAC") or m in in_number or word in ADDRESS_WORDS):
                break
            last = m
            m += 1
        out.append(Finding("address", group.first, last))
    return out


def _norm(word: str) -> str:
    return re.sub(r"[^\w']", "", word.lower())


def planted_words(words: Sequence[Any], answer: str, entity: str) -> list[int]:
    """The decoded words (indices) the decoder wrote for the planted entity in `answer`: the two aligned
    word by word (difflib); a misheard stretch counts with the planted words it replaced."""
    said = answer.split()
    start = len(answer[: answer.index(entity)].split())
    wanted = set(range(start, start + len(entity.split())))
    heard = [_norm(w[2]) for w in words]
    out: set[int] = set()
    matcher = difflib.SequenceMatcher(a=[_norm(w) for w in said], b=heard, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            out |= {b0 + k for k in range(a1 - a0) if a0 + k in wanted}
        elif wanted & set(range(a0, a1)):
            out |= set(range(b0, b1))
    return sorted(out)


def score(calls: list[list[list[Any]]], plans: list[tuple[str, str, str, str, str]], recognize: Recognizer,
          on_text: bool = False) -> dict[str, Any]:  # fmt: skip
    """Recall and false positives per kind over the calls (or over the planted text when on_text)."""
    out: dict[str, Any] = {"person": [0, 0, 0], "address": [0, 0, 0], "fp_person": 0, "fp_address": 0,
                           "negative_lines": 0, "misses": []}  # fmt: skip
    for (kind, question, answer, entity, voice), channels in zip(plans, calls, strict=True):
        if on_text:
            channels = [[[0, 0, " " + w] for w in text.split()] for text in (question, answer)]
        for number, words in enumerate(channels):
            toks = tokens([tuple(w) for w in words])
            found = find(toks, NAMES) + address_spans(toks, recognize)
            planted = planted_words(words, answer, entity) if number == 1 and kind != "negative" else []
            for finding_kind in ("person", "address"):
                type_ = "person_name" if finding_kind == "person" else "address"
                mine = [f for f in found if f.type == type_]
                covered = {i for f in mine for i in range(f.first, f.last + 1)}
                hits = [
                    f for f in mine if kind == finding_kind and set(range(f.first, f.last + 1)) & set(planted)
                ]
                out[f"fp_{finding_kind}"] += len(mine) - len(hits)
                out["misses"] += [f"false {type_}: {' '.join(t.raw for t in toks[f.first : f.last + 1])!r} in "
                                  f"{text_of(toks)[0]!r}" for f in mine if f not in hits]  # fmt: skip
                if kind == finding_kind and number == 1:
                    tally = out[kind]
                    tally[0] += 1
                    tally[1] += bool(hits)
                    tally[2] += bool(planted) and set(planted) <= covered
                    if not hits:
                        heard = "".join(w[2] for w in words)
                        out["misses"].append(f"{kind} {voice}: said {answer!r} heard {heard!r}")
        out["negative_lines"] += kind == "negative"
    return out


def dense_call_cost(model: str, rounds: int) -> None:
    """The cost on a dense call: the support call of fixtures/dialogue (54 s, two channels, turn taking),
    decoded and read by the model in turn, `rounds` times; the fastest of each."""
    from tests.dialogue_calls import call

    decoder = CallDecoder(model, "bench-names-dense-")
    path = write_wav(decoder.scratch / "support.wav", list(call().channels))
    if recognizer() is None:
        raise SystemExit("the `names` extra is not installed (pip install 'speechsvc[names]')")
    decode_s = ner_s = float("inf")
    for _ in range(rounds):
        result, took_s = decoder(path)
        decode_s = min(decode_s, took_s)
        channels = [[(w["start"], w["end"], w["word"]) for seg in doc["segments"] for w in seg["words"]]
                    for doc in result["channels"]]  # fmt: skip
        for _ in range(TIMING_RUNS):
            started = time.perf_counter()
            for words in channels:
                find(tokens(words), NAMES)
            ner_s = min(ner_s, time.perf_counter() - started)
    decoder.close()
    minutes = result["duration_s"] / 60
    count = sum(len(words) for words in channels)
    print(f"dense call ({result['duration_s']:.0f} s, {count / minutes:.0f} words a minute): transcription "
          f"{decode_s / minutes:.2f} s per audio minute, names {1000 * ner_s / minutes:.1f} ms per audio minute "
          f"({100 * ner_s / decode_s:.2f} % of transcription)")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--lines", type=int, default=10, help="calls of each kind (default 10)")
    parser.add_argument(
        "--seed", type=int, default=6, help="1-5 were read while writing the rules (default 6)"
    )
    parser.add_argument("--save", type=Path, help="write the decoded words here")
    parser.add_argument("--load", type=Path, help="read the decoded words from here instead of decoding")
    parser.add_argument("--misses", action="store_true", help="print what was missed")
    parser.add_argument(
        "--dense", type=int, default=0, help="only the cost on a dense call, this many rounds"
    )
    args = parser.parse_args()
    if args.dense:
        dense_call_cost(args.model, args.dense)
        return 0
    plans = plan(random.Random(args.seed), args.lines)
    if args.load:
        saved = json.loads(args.load.read_text())
        calls, audio_s, took_s = saved["calls"], saved["audio_s"], saved["took_s"]
    else:
        calls, audio_s, took_s = decode(plans, args.model)
        if args.save:
            args.save.write_text(json.dumps({"calls": calls, "audio_s": audio_s, "took_s": took_s}))
    started = time.perf_counter()
    recognize = recognizer()
    load_s = time.perf_counter() - started
    if recognize is None:
        print("the `names` extra is not installed (pip install 'speechsvc[names]')", file=sys.stderr)
        return 1
    ner_s = long_s = float("inf")  # the fastest of TIMING_RUNS: the machine is shared
    # A long channel (a real call's): every decoded word of the run, one call after the other, read at once
    long_channel = tokens([(0.0, 0.0, w[2]) for channels in calls for words in channels for w in words])
    for _ in range(TIMING_RUNS):
        started = time.perf_counter()
        for channels in calls:  # the cost: the model once over each channel's words, as the pipeline runs it
            for words in channels:
                find(tokens([tuple(w) for w in words]), NAMES)
        ner_s = min(ner_s, time.perf_counter() - started)
        started = time.perf_counter()
        find(long_channel, NAMES)
        long_s = min(long_s, time.perf_counter() - started)
    decoded = score(calls, plans, recognize)
    planted = score(calls, plans, recognize, on_text=True)
    print(f"model {args.model}, seed {args.seed}, {len(calls)} calls, {audio_s / 60:.1f} audio minutes")
    print(f"{'kind':<10}{'lines':>6}{'found':>7}{'recall':>8}{'whole':>7}{'on the planted text':>21}")
    for kind in ("person", "address"):
        lines, hits, whole = decoded[kind]
        print(f"{kind:<10}{lines:>6}{hits:>7}{hits / lines:>8.2f}{whole / lines:>7.2f}"
              f"{planted[kind][1] / planted[kind][0]:>21.2f}")  # fmt: skip
    lines = 2 * len(calls)
    print(f"false positives over {lines} lines ({decoded['negative_lines']} negative calls): "
          f"person {decoded['fp_person']} ({decoded['fp_person'] / lines:.3f} per line; planted text "
          f"{planted['fp_person']}), address {decoded['fp_address']} ({decoded['fp_address'] / lines:.3f} "
          f"per line; planted text {planted['fp_address']})")  # fmt: skip
    minutes = audio_s / 60
    print(f"transcription: {took_s / minutes:.2f} s per audio minute")
    words = sum(len(w) for channels in calls for w in channels)
    print(
        f"names (the model once per channel): {1000 * ner_s / minutes:.1f} ms per audio minute "
        f"({100 * ner_s / took_s:.2f} % of transcription; {words / minutes:.0f} words a minute here, "
        f"{1000 * ner_s / words * 1000:.0f} ms per 1000 words); loading the model once: {load_s:.2f} s"
    )
    print(
        f"one long channel of all {len(long_channel)} words: {1000 * long_s / len(long_channel) * 1000:.0f} ms "
        f"per 1000 words"
    )
    if args.misses:
        print("\n".join(decoded["misses"]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
