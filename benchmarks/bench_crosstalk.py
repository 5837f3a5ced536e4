"""Cross-talk suppression over a grid of leak gains and delays, on stereo calls built from the corpus
voices (tests/crosstalk_calls.py): for `auto` and `off`, the sentences transcribed on the wrong channel
too (duplicates), each party's own-speech WER against the clean call's, and the cost of the analysis in
ms of CPU per minute of audio, with its share of the transcription's time.

    python benchmarks/bench_crosstalk.py [--gains -6,-12,-20] [--delays 10,35,60] [--overlap 0,1.5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faster_whisper import WhisperModel  # noqa: E402

from speechsvc.asr.models import tiny_en_dir  # noqa: E402
from speechsvc.audio import crosstalk  # noqa: E402
from tests.crosstalk_calls import TEXTS, leaky_call  # noqa: E402
from tests.integration.helpers import normalise, wer  # noqa: E402


def share(sentence: str, text: str) -> float:
    words, within = normalise(sentence).split(), normalise(text).split()
    return sum(word in within for word in words) / len(words)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gains", default="-6,-12,-20")
    parser.add_argument("--delays", default="10,35,60")
    parser.add_argument("--overlap", default="0,1.5", help="seconds of double-talk per turn")
    args = parser.parse_args()
    model = WhisperModel(str(tiny_en_dir()), device="cpu", compute_type="int8", cpu_threads=2)

    def transcribe(audio: object) -> tuple[str, float]:
        started = time.process_time()
        segments, _ = model.transcribe(audio, language="en", beam_size=5, vad_filter=True)
        text = " ".join(segment.text for segment in segments)
        return text, time.process_time() - started

    agent_says, customer_says = ("jfk", "horizon"), ("wizard",)
    print("| gain dB | delay ms | double-talk s | mode | duplicates | agent WER (clean) | customer WER (clean) |"
          " analysis ms CPU / audio min | share of transcription |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for overlap in (float(v) for v in args.overlap.split(",")):
        for gain in (float(v) for v in args.gains.split(",")):
            for delay in (float(v) for v in args.delays.split(",")):
                call = leaky_call(gain, delay, overlap_s=overlap)
                clean = [transcribe(channel)[0] for channel in call.clean]
                minutes = len(call.agent) / 16000 / 60 * 2
                started = time.process_time()
                leaks = crosstalk.estimate([call.agent, call.customer])
                suppressed = crosstalk.suppress([call.agent, call.customer], leaks)
                analysis_s = time.process_time() - started
                for mode, channels in (("off", [call.agent, call.customer]), ("auto", suppressed)):
                    results = [transcribe(channel) for channel in channels]
                    texts = [text for text, _ in results]
                    decode_s = sum(seconds for _, seconds in results)
                    duplicates = sum(share(TEXTS[n], texts[1]) >= 0.4 for n in agent_says)
                    duplicates += sum(share(TEXTS[n], texts[0]) >= 0.4 for n in customer_says)
                    own = [wer(truth, text) for truth, text in zip(call.texts, texts, strict=True)]
                    base = [wer(truth, text) for truth, text in zip(call.texts, clean, strict=True)]
                    cost = (
                        f"{analysis_s * 1000 / minutes:.0f} | {analysis_s / decode_s:.1%}"
                        if mode == "auto"
                        else "- | -"
                    )
                    print(f"| {gain:g} | {delay:g} | {overlap:g} | {mode} | {duplicates} | {own[0]:.3f} ({base[0]:.3f}) | "
                          f"{own[1]:.3f} ({base[1]:.3f}) | {cost} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
