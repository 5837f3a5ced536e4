"""Live streams under load: N concurrent stereo calls streamed at real time to a real server (N = 1, 2, 4, 8),
alone and beside a burst of file jobs.

    python benchmarks/bench_live.py [--streams 1,2,4,8] [--lines 6] [--burst 4] [--compare-with TREE]

The calls are the dialogue fixtures (tests/dialogue_calls.py: agent and customer on their own channels, known
texts and times). Reported per N: final latency p50/p90, from the moment the chunk holding a turn's last
speech was sent to the arrival of the is_final covering it; the WER of the finals against the truth, beside
the WER of the same audio transcribed as a file; the server's CPU use (cores busy, from /proc); and the
largest N whose p90 stays under 3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import websockets.sync.client

from tests.acceptance.server import Server, http
from tests.conftest import write_wav
from tests.dialogue_calls import TURN_TAKING, Call, call
from tests.integration.helpers import wer

CHUNK_S = 0.1
RATE = 16000
P90_LIMIT_S = 3.0


def pcm(the_call: Call) -> bytes:
    stereo = np.stack(the_call.channels, axis=1)
    return bytes((np.clip(stereo, -1, 1) * 32767).astype("<i2").tobytes())


def stream(server: Server, data: bytes, out: dict[str, Any]) -> None:
    """One call at real time; the send time of each chunk and every final with its arrival time."""
    url = (
        server.url.replace("http", "ws")
        + f"/v1/listen?encoding=linear16&sample_rate={RATE}&channels=2&multichannel=true&punctuate=true"
    )
    step = int(RATE * CHUNK_S) * 4
    sent: list[float] = []
    finals: list[tuple[float, dict[str, Any]]] = []
    with websockets.sync.client.connect(url, max_size=None) as socket:

        def read() -> None:
            for text in socket:
                message = json.loads(text)
                if message["type"] == "Results" and message["is_final"]:
                    finals.append((time.monotonic(), message))
                if message["type"] == "Metadata":
                    return

        reader = threading.Thread(target=read)
        reader.start()
        began = time.monotonic()
        for number, at in enumerate(range(0, len(data), step)):
            time.sleep(max(0.0, began + number * CHUNK_S - time.monotonic()))
            socket.send(data[at : at + step])
            sent.append(time.monotonic())
        socket.send(json.dumps({"type": "CloseStream"}))
        reader.join()
    out.update(sent=sent, finals=finals)


def latencies(the_call: Call, out: dict[str, Any]) -> list[float]:
    found = []
    for said in the_call.truth:
        channel = 0 if said.who == "agent" else 1
        chunk = min(int(said.end / CHUNK_S), len(out["sent"]) - 1)
        covering = [at for at, m in out["finals"] if m["channel_index"][0] == channel
                    and m["start"] + m["duration"] >= said.end - 0.05 and m["start"] <= said.end]  # fmt: skip
        if covering:
            found.append(min(covering) - out["sent"][chunk])
    return found


def finals_text(out: dict[str, Any], channel: int) -> str:
    return " ".join(m["channel"]["alternatives"][0]["transcript"] for _, m in out["finals"]
                    if m["channel_index"][0] == channel)  # fmt: skip


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def file_wer(server: Server, wav: Path, the_call: Call) -> float:
    answer = http(
        "POST",
        f"{server.url}/v1/transcribe?format=json&wait=300",
        wav.read_bytes(),
        {"Content-Type": "audio/wav"},
    )
    result = json.loads(answer.body)
    texts = [" ".join(s["text"] for s in doc["segments"]) for doc in result["channels"]]
    return (wer(the_call.texts("agent"), texts[0]) + wer(the_call.texts("customer"), texts[1])) / 2


def run(server: Server, the_call: Call, count: int, burst: int, wav: Path) -> dict[str, Any]:
    data = pcm(the_call)
    outs: list[dict[str, Any]] = [{} for _ in range(count)]
    cpu_before, wall_before = cpu_s(server.process.pid), time.monotonic()  # type: ignore[union-attr]
    if burst:
        for _ in range(burst):
            http("POST", f"{server.url}/v1/transcribe", wav.read_bytes(), {"Content-Type": "audio/wav"})
    threads = [threading.Thread(target=stream, args=(server, data, out)) for out in outs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cores = (cpu_s(server.process.pid) - cpu_before) / (time.monotonic() - wall_before)  # type: ignore[union-attr]
    lat = sorted(x for out in outs for x in latencies(the_call, out))
    wers = [(wer(the_call.texts("agent"), finals_text(o, 0)) + wer(the_call.texts("customer"), finals_text(o, 1))) / 2
            for o in outs]  # fmt: skip
    p90 = lat[min(len(lat) - 1, int(0.9 * len(lat)))] if lat else float("nan")
    return {"n": count, "burst": burst, "p50": statistics.median(lat) if lat else float("nan"), "p90": p90,
            "wer": statistics.mean(wers), "cores": cores, "turns": len(lat)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", default="1,2,4,8")
    parser.add_argument("--lines", type=int, default=6, help="lines of the dialogue script per call")
    parser.add_argument("--burst", type=int, default=4, help="file jobs submitted beside the streams")
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument(
        "--compare-with",
        default=None,
        metavar="TREE",
        help="also run the server from this source tree (another commit's checkout), each row's runs "
        "alternating between the two (A B, then B A), to see what a change moved in the same run",
    )
    args = parser.parse_args()
    the_call = call(TURN_TAKING[: args.lines])
    trees: list[str | None] = [None] if args.compare_with is None else [None, args.compare_with]
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        wav = write_wav(Path(scratch) / "call.wav", list(the_call.channels))
        servers = [start(Path(scratch) / f"data{k}", args.model, tree) for k, tree in enumerate(trees)]
        try:
            baseline = file_wer(servers[0], wav, the_call)
            rows: list[dict[str, Any]] = []
            settings = [(n, burst) for n in map(int, args.streams.split(",")) for burst in (0, args.burst)]
            for number, (n, burst) in enumerate(settings):
                order = range(len(servers)) if number % 2 == 0 else reversed(range(len(servers)))
                found = {k: run(servers[k], the_call, n, burst, wav) for k in order}
                rows += [{**found[k], "tree": trees[k] or "this tree"} for k in range(len(servers))]
        finally:
            for server in servers:
                server.stop()
    load = (load + os.getloadavg()[0]) / 2
    duration = len(the_call.channels[0]) / RATE
    print(f"{args.model}, {duration:.0f} s stereo calls, {os.cpu_count()} cores, load average ~{load:.1f}; "
          f"file WER {baseline:.3f}")  # fmt: skip
    print("| tree | streams | burst | turns | final p50 s | final p90 s | finals WER | cores busy |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['tree']} | {row['n']} | {row['burst']} | {row['turns']} | {row['p50']:.2f} | "
            f"{row['p90']:.2f} | {row['wer']:.3f} | {row['cores']:.2f} |"
        )
    for tree in dict.fromkeys(row["tree"] for row in rows):
        fits = [row["n"] for row in rows if row["tree"] == tree and row["p90"] < P90_LIMIT_S]
        print(f"{tree}: largest N with p90 < {P90_LIMIT_S:g} s: {max(fits) if fits else 0}")
    return 0


def start(data_dir: Path, model: str, tree: str | None) -> Server:
    """The server from this checkout, or from the source tree `tree`: its PYTHONPATH, and its working
    directory too (`python -m` puts the working directory first on the path)."""
    saved, cwd = os.environ.get("PYTHONPATH"), os.getcwd()
    if tree is not None:
        os.environ["PYTHONPATH"] = tree
        os.chdir(tree)
    try:
        return Server(data_dir, "--model", model).start()
    finally:
        os.chdir(cwd)
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


if __name__ == "__main__":
    sys.exit(main())
