"""Throughput of the running service against the bare faster-whisper library, same machine, same run.

    python benchmarks/bench_service.py [--calls 6] [--seconds 60] [--device cpu|cuda] [--workers N]
                                       [--batch-sizes 0,8] [--no-sequential]

Builds stereo calls from ../shared/corpus, then measures on the same channels:
  bare sequential  WhisperModel.transcribe, channel after channel (what one request at a time costs)
  bare batched     BatchedInferencePipeline (batch 8), channel after channel
  service burst    `speechsvc serve` as a subprocess, every call POSTed at once, polled to Completed;
                   once per --batch-sizes entry (0: the defaults; 8: VAD chunks batched across jobs)
and a single call through each. Prints audio seconds, wall seconds, x real time, ratio to bare
sequential, peak RSS and WER against the known texts. Settings match the service's defaults:
beam 5, VAD, word timestamps, language en.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jiwer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calls import Call, make_calls

from speechsvc.asr.models import pick_compute_type, pick_device, resolve_model
from speechsvc.audio.decode import decode_channels
from speechsvc.audio.layout import ChannelRef


@dataclass
class Row:
    mode: str
    calls: int
    audio_s: float
    wall_s: float
    rss_mib: float | None
    wer: float

    @property
    def speed(self) -> float:
        return self.audio_s / self.wall_s


def normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).strip()


def corpus_wer(references: list[str], hypotheses: list[str]) -> float:
    return float(jiwer.wer([normalise(r) for r in references], [normalise(h) for h in hypotheses]))


def peak_rss_mib(pid: int | str = "self") -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def bare(calls: list[Call], model: Any, batched: bool, parallel: int = 1) -> tuple[float, list[str]]:
    """Every channel of every call through the bare library: one after another, or `parallel` at a time."""
    from faster_whisper import BatchedInferencePipeline

    engine = BatchedInferencePipeline(model) if batched else model
    kwargs = {"batch_size": 8} if batched else {}
    jobs = [(call, channel) for call in calls for channel in (0, 1)]

    def one(job: tuple[Call, int]) -> str:
        call, channel = job
        (audio,) = decode_channels(call.path, "audio/wav", [ChannelRef(0, channel)], max_duration_s=3600)
        segments, _ = engine.transcribe(
            audio, language="en", beam_size=5, word_timestamps=True, vad_filter=True, **kwargs
        )
        return " ".join(s.text.strip() for s in segments)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        hypotheses = list(pool.map(one, jobs))
    return time.perf_counter() - started, hypotheses


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    with urllib.request.urlopen(request, timeout=600) as response:
        return response.status, dict(response.headers), response.read()


def service(base_url: str, calls: list[Call]) -> tuple[float, list[str]]:
    """POST every call at once, poll each to Completed; wall time from first POST to last result."""

    def submit(call: Call) -> str:
        _, headers, _ = http(
            "POST",
            f"{base_url}/v1/transcribe?format=json&channel_labels=agent,customer",
            call.path.read_bytes(),
            {"Content-Type": "audio/wav"},
        )
        return str(headers["x-requestid"])

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        ids = list(pool.map(submit, calls))
    results: dict[str, Any] = {}
    while len(results) < len(ids):
        for request_id in ids:
            if request_id in results:
                continue
            _, headers, body = http("GET", f"{base_url}/v1/transcribe/{request_id}?format=json")
            if headers.get("x-status") == "Completed":
                results[request_id] = json.loads(body)
            elif headers.get("x-status") == "Failed":
                raise RuntimeError(f"job {request_id} failed: {headers.get('x-error')}")
        time.sleep(0.05)
    wall = time.perf_counter() - started
    hypotheses = []
    for request_id in ids:
        by_label = {
            c["label"]: " ".join(s["text"] for s in c["segments"]) for c in results[request_id]["channels"]
        }
        hypotheses += [by_label["agent"], by_label["customer"]]
    return wall, hypotheses


def start_server(
    data_dir: Path, args: argparse.Namespace, batch_size: int
) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "speechsvc",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--model",
        args.model,
        "--device",
        args.device,
        "--workers",
        str(args.workers),
        "--log-level",
        "warning",
        *(["--batch-size", str(batch_size)] if batch_size else []),
    ]
    return wait_ready(subprocess.Popen(command), f"http://127.0.0.1:{port}")


def wait_ready(process: subprocess.Popen[bytes], url: str) -> tuple[subprocess.Popen[bytes], str]:
    """Wait (up to 2 minutes) until the node answers /readyz with 200."""
    for _ in range(600):
        try:
            if http("GET", url + "/readyz")[0] == 200:
                return process, url
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--workers", type=int, default=0, help="engine slots; 0 = the service's automatic choice"
    )
    parser.add_argument(
        "--batch-sizes",
        default="0,8",
        help="the service's --batch-size, one service run each; 0 = its default (1 on the CPU, 16 on CUDA); "
        "more than 1 batches VAD chunks across jobs",
    )
    parser.add_argument("--no-sequential", action="store_true", help="skip the bare sequential run")
    args = parser.parse_args()

    from faster_whisper import WhisperModel

    device = pick_device(args.device)
    compute_type = pick_compute_type("auto", device)
    with tempfile.TemporaryDirectory() as scratch:
        calls = make_calls(Path(scratch) / "calls", args.calls, args.seconds)
        one = calls[:1]
        spec = resolve_model(args.model, Path(scratch) / "models")
        rows: list[Row] = []

        def record(mode: str, ran: list[Call], timed: tuple[float, list[str]], rss: float | None) -> None:
            wall, hypotheses = timed
            audio_s = 2 * sum(call.duration_s for call in ran)
            references = [text for call in ran for text in call.texts]
            rows.append(Row(mode, len(ran), audio_s, wall, rss, corpus_wer(references, hypotheses)))

        model = WhisperModel(str(spec.path or spec.name), device=device, compute_type=compute_type)
        bare(one, model, batched=False)  # warm-up: first-call costs are nobody's throughput
        if not args.no_sequential:
            record("bare sequential", calls, bare(calls, model, batched=False), peak_rss_mib())
        record("bare batched (8)", calls, bare(calls, model, batched=True), peak_rss_mib())
        record("bare batched, 1 call", one, bare(one, model, batched=True), None)
        del model
        # the reference: the batched pipeline, two channels at a time, one thread per core
        model = WhisperModel(
            str(spec.path or spec.name),
            device=device,
            compute_type=compute_type,
            num_workers=2,
            cpu_threads=1,
        )
        record(
            "bare batched, 2 at a time", calls, bare(calls, model, batched=True, parallel=2), peak_rss_mib()
        )
        del model

        services = [int(size) for size in args.batch_sizes.split(",")]
        for number, batch_size in enumerate(services):
            process, url = start_server(Path(scratch) / f"data{number}", args, batch_size)
            setting = f"batch {batch_size}" if batch_size else "defaults"
            try:
                service(url, one)  # warm-up
                burst = service(url, calls)
                record(f"service burst ({setting})", calls, burst, peak_rss_mib(process.pid))
                record(f"service, 1 call ({setting})", one, service(url, one), None)
            finally:
                process.terminate()
                process.wait(timeout=120)

    by_mode = {row.mode: row for row in rows}
    batched, batched_one = by_mode["bare batched (8)"], by_mode["bare batched, 1 call"]
    base = rows[0].speed
    print(
        f"\nspeechsvc benchmark: {args.calls} stereo calls x {args.seconds:g} s, model {args.model}, "
        f"{device}/{compute_type}, workers {args.workers or 'auto'}\n"
    )
    print(
        f"| {'mode':<32} | calls | audio s | wall s | x real time | vs {rows[0].mode:<16} | peak RSS MiB | WER   |"
    )
    print(f"|{'-' * 34}|-------|---------|--------|-------------|{'-' * 22}|--------------|-------|")
    for row in rows:
        rss = f"{row.rss_mib:.0f}" if row.rss_mib is not None else "-"
        print(
            f"| {row.mode:<32} | {row.calls:>5} | {row.audio_s:>7.1f} | {row.wall_s:>6.1f} | {row.speed:>11.1f} "
            f"| {row.speed / base:>19.2f}x | {rss:>12} | {row.wer:.3f} |"
        )
    print()
    for mode in [row.mode for row in rows if row.mode.startswith("service burst")]:
        setting = mode[len("service burst ") :]
        burst, single = by_mode[mode], by_mode[f"service, 1 call {setting}"]
        print(f"service {setting}:")
        print(f"  throughput / bare batched (channel after channel): {burst.speed / batched.speed:.2f}x")
        print(
            f"  latency of one call / bare batched on its two channels: {single.wall_s / batched_one.wall_s:.2f}x"
        )
        print(f"  WER - bare batched: {burst.wer - batched.wer:+.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
