"""Diarization on mono calls mixed from real and generated voices (tests/diarize_calls.py): for each call,
the share of speech time on the right speaker (after the best mapping) and DER with a 0.25 s collar, with
the count estimated and given; the speakers' centroid distances that the estimate rests on; and the cost:
diarization alone in x real time, and a diarized job's wall time against a plain one's (the service's
pipeline on the embedded tiny.en, on this machine's CPU).

    python benchmarks/bench_diarize.py [--length 60] [--jobs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from speechsvc.app import build_registry  # noqa: E402
from speechsvc.audio.isolate import DecodeLimits  # noqa: E402
from speechsvc.config import Config  # noqa: E402
from speechsvc.diarize import SpeakerCount, load_encoder  # noqa: E402
from speechsvc.diarize.speakers import speaker_spans  # noqa: E402
from speechsvc.jobs.model import JobRequest  # noqa: E402
from speechsvc.service.pipeline import run_pipeline  # noqa: E402
from tests.conftest import write_wav  # noqa: E402
from tests.diarize_calls import mixed_call, scores  # noqa: E402

CALLS = [
    ("jfk", "wizard"), ("m3", "f4"), ("f2", "m3"), ("jfk", "f4"), ("wizard", "horizon"),
    ("jfk", "wizard", "m3"), ("f4", "f2"), ("jfk",), ("m3",),
]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--length", type=float, default=60.0, help="seconds per call")
    parser.add_argument("--jobs", type=int, default=3, help="runs of the job-cost comparison (median)")
    parser.add_argument("--models", default="tiny.en,base", help="models for the job-cost comparison")
    args = parser.parse_args()
    encoder = load_encoder()

    print("## Accuracy (share of speech time on the right speaker / DER, 0.25 s collar)\n")
    print("| voices | turns | pause s | speakers found (est.) | right (est.) | DER (est.) | right (exact) | DER (exact) | x real time |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    two_speaker_rights = []
    for names in CALLS:
        for min_turn_s, gap_s in ((2.0, 0.4), (4.0, 0.4), (2.0, 0.0)):
            call = mixed_call(names, min_turn_s=min_turn_s, gap_s=gap_s, length_s=args.length)
            started = time.perf_counter()
            estimated = speaker_spans(encoder, call.audio, SpeakerCount())
            elapsed = time.perf_counter() - started
            exact = speaker_spans(
                encoder, call.audio, SpeakerCount(exact=len(names), low=len(names), high=len(names))
            )
            right, der = scores(call, estimated)
            right_x, der_x = scores(call, exact)
            if len(names) == 2 and set(names) != {"f4", "f2"}:
                two_speaker_rights.append(right)
            print(f"| {'+'.join(names)} | ≥{min_turn_s:g} s | {gap_s:g} | {len({s.speaker for s in estimated})} of "
                  f"{len(names)} | {right:.3f} | {der:.3f} | {right_x:.3f} | {der_x:.3f} | "
                  f"{call.duration_s / elapsed:.0f}x |")  # fmt: skip
    print(
        f"\nTwo-speaker calls (not f4+f2): right share min {min(two_speaker_rights):.3f}, "
        f"mean {statistics.mean(two_speaker_rights):.3f} (target ≥ 0.90)\n"
    )

    print("## Cost of a diarized job against a plain one (the service's pipeline, CPU, median of runs)\n")
    call = mixed_call(("jfk", "m3"), min_turn_s=2.0, length_s=args.length)
    path = write_wav(Path(tempfile.mkdtemp()) / "call.wav", [call.audio])
    started = time.perf_counter()
    speaker_spans(encoder, call.audio, SpeakerCount())
    alone = time.perf_counter() - started
    print("| model | call s | plain job s | diarized job s | added | diarization alone s (x real time) |")
    print("|---|---|---|---|---|---|")
    for model in args.models.split(","):
        config = Config(data_dir=Path(tempfile.mkdtemp()) / "data", model=model)
        transcriber = build_registry(config).get()

        def job(
            speakers: SpeakerCount | None, model: str = model, transcriber: object = transcriber
        ) -> float:
            request = JobRequest(model=model, speakers=speakers)
            started = time.perf_counter()
            run_pipeline("bench", path, "audio/wav", request, transcriber, max_duration_s=3600, max_channels=8,  # type: ignore[arg-type]
                         limits=DecodeLimits(), scratch_dir=path.parent / "scratch", on_progress=lambda _: None)  # fmt: skip
            return time.perf_counter() - started

        job(None)  # warm-up
        plain = statistics.median(job(None) for _ in range(args.jobs))
        diarized = statistics.median(job(SpeakerCount()) for _ in range(args.jobs))
        print(f"| {model} | {call.duration_s:.0f} | {plain:.2f} | {diarized:.2f} | {diarized / plain - 1:+.1%} | "
              f"{alone:.2f} ({call.duration_s / alone:.0f}x) |")  # fmt: skip
        transcriber.close()  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main())
