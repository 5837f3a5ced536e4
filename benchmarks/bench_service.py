"""Throughput of the running service against the bare faster-whisper library, same machine, same run.

    python benchmarks/bench_service.py [--calls 6] [--seconds 60] [--device cpu|cuda] [--workers N]
                                       [--batch-sizes 0,1] [--sets turn-taking,gapless] [--compare-with TREE]

Builds two sets of stereo calls (benchmarks/calls.py): turn-taking (each side silent while the other
talks, the corpus's recordings) and gapless (both sides talk all the time, the corpus's recordings and
three generated voices), and a gapless mono monologue of different sentences. On the same audio:
  bare sequential  WhisperModel.transcribe, channel after channel (what one request at a time costs)
  bare batched     BatchedInferencePipeline (batch 8), channel after channel
  service burst    `speechsvc serve` as a subprocess, every call of a set POSTed at once, polled to
                   Completed; once per --batch-sizes entry (0: the defaults)
and a single call through each. Prints audio seconds, wall seconds, x real time, the ratio to the bare
batched pipeline, peak RSS and WER against the known texts; each one's WER on the monologue; and for each
service burst the lockstep decoder's batch sizes (from /metrics: batches by call kind and items).
Settings match the service's defaults: beam 5, VAD, word timestamps, language en.
"""

from __future__ import annotations

import argparse
import json
import os
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
from calls import Call, make_calls, make_gapless_calls, make_monologue

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


def batch_sizes(base_url: str) -> dict[str, dict[int, int]]:
    """The lockstep decoder's batches so far, by call kind and items (speechsvc_lockstep_batches)."""
    from prometheus_client.parser import text_string_to_metric_families

    sizes: dict[str, dict[int, int]] = {}
    for family in text_string_to_metric_families(http("GET", f"{base_url}/metrics")[2].decode()):
        for sample in family.samples:
            if sample.name == "speechsvc_lockstep_batches_total":
                kind, items = sample.labels["kind"], int(sample.labels["items"])
                sizes.setdefault(kind, {})[items] = int(sample.value)
    return sizes


def histogram_since(before: dict[str, dict[int, int]], after: dict[str, dict[int, int]]) -> str:
    """'encode: 8x3 6x1 (mean 7.5)' per kind: batches of each size between two readings, largest first."""
    lines = []
    for kind in ("encode", "generate", "align"):
        counts = {n: c - before.get(kind, {}).get(n, 0) for n, c in after.get(kind, {}).items()}
        counts = {n: c for n, c in sorted(counts.items(), reverse=True) if c}
        if counts:
            mean = sum(n * c for n, c in counts.items()) / sum(counts.values())
            lines.append(
                f"{kind}: " + " ".join(f"{n}x{c}" for n, c in counts.items()) + f" (mean {mean:.1f})"
            )
    return "; ".join(lines) or "no batches (the sequential decoder)"


def start_server(
    data_dir: Path, args: argparse.Namespace, batch_size: int, tree: str | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """`speechsvc serve` on a free port, from this checkout or from the source tree `tree` (PYTHONPATH)."""
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
    env = dict(os.environ, PYTHONPATH=str(Path(tree).resolve())) if tree else None
    return wait_ready(subprocess.Popen(command, env=env), f"http://127.0.0.1:{port}")


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
        default="0",
        help="the service's --batch-size, one service run each; 0 = its defaults (the lockstep decoder, "
        "4 windows per core on the CPU, 16 on CUDA); 1 = the sequential decoder without batching",
    )
    parser.add_argument("--sets", default="turn-taking,gapless", help="call sets to run")
    parser.add_argument(
        "--compare-with",
        default=None,
        metavar="TREE",
        help="also run the service from this source tree (another commit's checkout, e.g. a git worktree), "
        "its bursts alternating with this one's (A B B A), to see what a change moved in the same run",
    )
    args = parser.parse_args()

    from faster_whisper import WhisperModel

    device = pick_device(args.device)
    compute_type = pick_compute_type("auto", device)
    rows: dict[str, list[Row]] = {}
    histograms: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as scratch:
        makers = {"turn-taking": make_calls, "gapless": make_gapless_calls}
        sets = {
            name: makers[name](Path(scratch) / name, args.calls, args.seconds)
            for name in args.sets.split(",")
        }
        monologue, monologue_text, monologue_s = make_monologue(Path(scratch) / "monologue")
        spec = resolve_model(args.model, Path(scratch) / "models")

        def record(
            table: str, mode: str, ran: list[Call], timed: tuple[float, list[str]], rss: float | None
        ) -> None:
            wall, hypotheses = timed
            audio_s = 2 * sum(call.duration_s for call in ran)
            references = [text for call in ran for text in call.texts]
            rows.setdefault(table, []).append(
                Row(mode, len(ran), audio_s, wall, rss, corpus_wer(references, hypotheses))
            )

        def record_monologue(mode: str, text: str) -> None:
            rows.setdefault("monologue", []).append(
                Row(mode, 1, monologue_s, 1.0, None, corpus_wer([monologue_text], [text]))
            )

        model = WhisperModel(str(spec.path or spec.name), device=device, compute_type=compute_type)
        first = next(iter(sets.values()))
        bare(first[:1], model, batched=False)  # warm-up: first-call costs are nobody's throughput
        for name, calls in sets.items():
            record(name, "bare sequential", calls, bare(calls, model, batched=False), peak_rss_mib())
            record(name, "bare batched (8)", calls, bare(calls, model, batched=True), peak_rss_mib())
            record(name, "bare batched, 1 call", calls[:1], bare(calls[:1], model, batched=True), None)
        (audio,) = decode_channels(monologue, "audio/wav", [ChannelRef(0, 0)], max_duration_s=3600)
        record_monologue("bare sequential", mono_text(model, audio, batched=False))
        record_monologue("bare batched (8)", mono_text(model, audio, batched=True))
        del model

        variants: list[tuple[str, str | None]] = [("", None)]
        if args.compare_with:
            variants.append((f" @{Path(args.compare_with).name}", args.compare_with))
        for number, batch_size in enumerate(int(size) for size in args.batch_sizes.split(",")):
            servers = [start_server(Path(scratch) / f"data{number}-{k}", args, batch_size, tree)
                       for k, (_, tree) in enumerate(variants)]  # fmt: skip
            setting = f"batch {batch_size}" if batch_size else "defaults"
            try:
                for _, url in servers:
                    service(url, first[:1])  # warm-up
                for name, calls in sets.items():
                    # with a second tree: A B B A, so that a drift in the machine's speed falls on both
                    order = [0] if len(servers) == 1 else [0, 1, 1, 0]
                    walls: dict[int, list[float]] = {k: [] for k in range(len(servers))}
                    heard: dict[int, list[str]] = {}
                    before = {k: batch_sizes(url) for k, (_, url) in enumerate(servers)}
                    for k in order:
                        wall, heard[k] = service(servers[k][1], calls)
                        walls[k].append(wall)
                    for k, (suffix, _) in enumerate(variants):
                        process, url = servers[k]
                        histograms[f"{name}, {setting}{suffix}"] = histogram_since(
                            before[k], batch_sizes(url)
                        )
                        mean_wall = sum(walls[k]) / len(walls[k])
                        record(name, f"service burst ({setting}{suffix})", calls, (mean_wall, heard[k]),
                               peak_rss_mib(process.pid))  # fmt: skip
                        record(
                            name,
                            f"service, 1 call ({setting}{suffix})",
                            calls[:1],
                            service(url, calls[:1]),
                            None,
                        )
                for k, (suffix, _) in enumerate(variants):
                    record_monologue(f"service ({setting}{suffix})", service_text(servers[k][1], monologue))
            finally:
                for process, _ in servers:
                    process.terminate()
                    process.wait(timeout=120)

    print(
        f"\nspeechsvc benchmark: {args.calls} stereo calls x {args.seconds:g} s per set, model {args.model}, "
        f"{device}/{compute_type}, workers {args.workers or 'auto'}"
    )
    for table, found in rows.items():
        if table == "monologue":
            continue
        by_mode = {row.mode: row for row in found}
        batched, batched_one, sequential = (
            by_mode["bare batched (8)"],
            by_mode["bare batched, 1 call"],
            by_mode["bare sequential"],
        )
        print(f"\n### {table} calls\n")
        print(
            f"| {'mode':<30} | calls | audio s | wall s | x real time | vs bare batched | peak RSS MiB | WER   |"
        )
        print(
            f"|{'-' * 32}|-------|---------|--------|-------------|-----------------|--------------|-------|"
        )
        for row in found:
            rss = f"{row.rss_mib:.0f}" if row.rss_mib is not None else "-"
            ratio = f"{row.speed / batched.speed:.2f}x" if row.calls == batched.calls else "-"
            print(f"| {row.mode:<30} | {row.calls:>5} | {row.audio_s:>7.1f} | {row.wall_s:>6.1f} | {row.speed:>11.1f} "
                  f"| {ratio:>15} | {rss:>12} | {row.wer:.3f} |")  # fmt: skip
        for mode in [row.mode for row in found if row.mode.startswith("service burst")]:
            setting = mode[len("service burst ") :]
            burst, single = by_mode[mode], by_mode[f"service, 1 call {setting}"]
            print(f"\nservice {setting}, {table}: throughput {burst.speed / batched.speed:.2f}x the bare batched "
                  f"pipeline; one call's latency {single.wall_s / batched_one.wall_s:.2f}x; "
                  f"WER {burst.wer - sequential.wer:+.3f} against bare sequential")  # fmt: skip
    print("\n### lockstep batch sizes in each service burst (size x batches)\n")
    for where, histogram in histograms.items():
        print(f"- {where}: {histogram}")
    print(f"\n### gapless monologue ({monologue_s:.0f} s, different sentences)\n")
    print("| mode | WER |\n|---|---|")
    for row in rows["monologue"]:
        print(f"| {row.mode} | {row.wer:.3f} |")
    return 0


def mono_text(model: Any, audio: Any, batched: bool) -> str:
    from faster_whisper import BatchedInferencePipeline

    engine = BatchedInferencePipeline(model) if batched else model
    kwargs = {"batch_size": 8} if batched else {}
    segments, _ = engine.transcribe(
        audio, language="en", beam_size=5, word_timestamps=True, vad_filter=True, **kwargs
    )
    return " ".join(s.text.strip() for s in segments)


def service_text(base_url: str, path: Path) -> str:
    _, _, body = http("POST", f"{base_url}/v1/transcribe?format=txt&wait=300", path.read_bytes(),
                      {"Content-Type": "audio/wav"})  # fmt: skip
    return str(body.decode())


if __name__ == "__main__":
    sys.exit(main())
