"""The merged conversation, before and after segments are cut and timed by their words (speechsvc.results.turns),
and what it costs, on the same calls in the same run.

    python benchmarks/bench_turns.py [--model tiny.en] [--models tiny.en,base]

Calls with known turns from fixtures/dialogue (tests/dialogue_calls.py): strict turn-taking (54 s, a pause
inside a customer's turn in which the agent speaks), a barge-in (21 s, 1.2 s of real overlap) and the
exchange repeated four times (210 s). For each: order errors (the other party's lines inside a timeline
entry) and overlap, from Whisper's segments as they come (before) and cut and timed by words (after).
Also the pauses inside Whisper's segments (the threshold PAUSE_S: pauses inside a sentence against
pauses between sentences), and the cost of the internal word alignment, of the coverage check (a VAD
pass) and of decoding uncovered stretches again, against the decode alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from speechsvc.asr import coverage
from speechsvc.asr.engine import TranscribeOptions, WhisperEngine
from speechsvc.asr.models import resolve_model
from speechsvc.asr.pieces import speech_regions
from speechsvc.audio.layout import ChannelRef, SelectedChannel
from speechsvc.results import turns
from speechsvc.results.canonical import build_result
from tests.dialogue_calls import BARGE_IN, TURN_TAKING, call, order_errors, true_overlap_s
from tests.diarize_calls import voices

SENTENCE_END = (".", "?", "!")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="tiny.en,base")
    args = parser.parse_args()
    from faster_whisper import WhisperModel

    calls = {"turn-taking (54 s)": call(TURN_TAKING), "barge-in (21 s)": call(BARGE_IN),
             "repeated x4 (210 s)": call(TURN_TAKING, repeat=4)}  # fmt: skip
    monologues = {name: audio for name, audio in voices().items()}
    for name in args.models.split(","):
        spec = resolve_model(name, Path("data/models"))
        if spec.source == "parts":
            from speechsvc.asr.models import join_base_model

            join_base_model(Path("data/models"))
        model = WhisperModel(str(spec.path or spec.name), device="cpu", compute_type="int8")
        engine = WhisperEngine(name, model)
        print(f"\n## {name}\n")
        inside, between = [], []
        for audio in [*monologues.values(), *(ch for c in calls.values() for ch in c.channels)]:
            transcript = engine.transcribe(audio, TranscribeOptions(language="en"), lambda _: None)
            for segment in transcript.segments:
                for before, word in zip(segment.words, segment.words[1:], strict=False):
                    gap = round(float(word.start - before.end), 2)
                    (between if before.word.strip().endswith(SENTENCE_END) else inside).append(gap)
        print("pauses inside Whisper's segments (s): after a comma or inside a sentence: "
              f"99th percentile {np.percentile(inside, 99):.2f}, those of 0.5 s and more {sorted(g for g in inside if g >= 0.5)}; "
              f"after a sentence's end: {sorted(between)}")  # fmt: skip
        print(
            "\n| call | order errors before | after | overlap s before | after | true | talk s after (truth) |"
        )
        print("|---|---|---|---|---|---|---|")
        costs = {"decode": 0.0, "decode without words": 0.0, "coverage VAD": 0.0, "re-decode": 0.0}
        audio_s = 0.0
        for label, found in calls.items():
            started = time.perf_counter()
            raw = [
                engine.transcribe(ch, TranscribeOptions(language="en"), lambda _: None)
                for ch in found.channels
            ]
            costs["decode"] += time.perf_counter() - started
            started = time.perf_counter()
            for ch in found.channels:
                engine.transcribe(ch, TranscribeOptions(language="en", word_timestamps=False), lambda _: None)
            costs["decode without words"] += time.perf_counter() - started
            started = time.perf_counter()
            speech = [coverage.speech_stretches(speech_regions(ch)) for ch in found.channels]
            costs["coverage VAD"] += time.perf_counter() - started
            started = time.perf_counter()
            missing = [coverage.uncovered(s, t.segments) for s, t in zip(speech, raw, strict=True)]
            for position, stretches in enumerate(missing):
                for start, end in stretches:
                    clip = found.channels[position][int(start * 16000) : int(end * 16000)]
                    engine.transcribe(clip, TranscribeOptions(language="en", vad=False), lambda _: None)
            costs["re-decode"] += time.perf_counter() - started
            audio_s += sum(len(ch) for ch in found.channels) / 16000
            labelled = [SelectedChannel(ChannelRef(0, n), who) for n, who in enumerate(("agent", "customer"))]
            # before: Whisper's segments as they come, the stats from their spans (no words to count by)
            unworded = [dataclasses.replace(t, segments=[dataclasses.replace(g, words=()) for g in t.segments])
                        for t in raw]  # fmt: skip
            before = build_result("x", name, list(zip(labelled, unworded, strict=True)))
            after = build_result("x", name, list(zip(labelled, turns.cut_turns(raw, speech), strict=True)))
            errors = [order_errors([(e["start"], e["end"], e["label"]) for e in r["timeline"]], found.truth)
                      for r in (before, after)]  # fmt: skip
            truth_talk = {
                w: round(sum(s.end - s.start for s in found.truth if s.who == w), 1)
                for w in ("agent", "customer")
            }
            print(f"| {label} | {errors[0]} | {errors[1]} | {before['stats']['overlap_s']:.2f} | "
                  f"{after['stats']['overlap_s']:.2f} | {true_overlap_s(found.truth):.2f} | "
                  f"{after['stats']['talk_time_s']} ({truth_talk}) |")  # fmt: skip
            print(f"  uncovered stretches: {missing}")
        print(f"\ncosts over {audio_s:.0f} s of channel audio (one core's decoder, {name} int8):")
        for what, seconds in costs.items():
            print(
                f"- {what}: {seconds:.2f} s ({audio_s / seconds if seconds else float('inf'):.0f}x real time)"
            )
        words = costs["decode"] - costs["decode without words"]
        print(
            f"- word alignment: {words:+.2f} s ({100 * words / costs['decode without words']:+.0f} % of the decode)"
        )
        print(f"- coverage check: {100 * costs['coverage VAD'] / costs['decode']:.0f} % of the decode")
        del engine, model
    return 0


if __name__ == "__main__":
    sys.exit(main())
