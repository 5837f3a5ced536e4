"""The real service, as users run it: `python -m speechsvc serve` with the real tiny.en model, real HTTP,
a real callback receiver, kill -9 in the middle of a job."""

import json
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from speechsvc.cli import LONG_FILE_BYTES
from tests.acceptance.server import Server, http
from tests.conftest import FIXTURES, JFK_TEXT, STEREO_TEXTS, corpus, long_stereo_call, write_wav
from tests.integration.helpers import wer
from tests.receiver import CallbackReceiver

pytestmark = pytest.mark.model


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "data", "--max-duration-s", "60").start()
    yield running
    running.stop()


def test_raw_post_poll_to_completed_with_one_callback(server: Server) -> None:
    with CallbackReceiver() as receiver:
        answer = server.submit(
            corpus("stereo_diarization.wav"),
            channel_labels="agent,customer",
            callback=receiver.url,
            userdata="call-1",
            format="json",
        )
        assert answer.status == 202
        request_id = json.loads(answer.body)["request_id"]
        statuses = []
        while True:
            poll = server.poll(request_id)
            statuses.append(poll.headers["x-status"])
            if statuses[-1] == "Completed":
                break
            assert poll.status in (200, 204)
            time.sleep(0.05)
        (call,) = receiver.wait_for(1)
        time.sleep(0.5)
        assert len(receiver.requests) == 1
    assert set(statuses) <= {"Queued", "Pending", "Ready", "Completed"}
    assert call.headers["x-requestid"] == request_id
    assert call.headers["x-status"] == "Completed"
    assert call.headers["x-userdata"] == "call-1"
    result = json.loads(call.body)
    texts = {c["label"]: " ".join(s["text"] for s in c["segments"]) for c in result["channels"]}
    assert wer(STEREO_TEXTS[0], texts["agent"]) <= 0.1 and wer(STEREO_TEXTS[1], texts["customer"]) <= 0.2
    final = json.loads(server.poll(request_id, format="json").body)
    assert final["callback"]["http_status"] == 200
    assert poll.headers["x-progress"] == "100"


def test_failed_job_gets_one_failed_callback(server: Server) -> None:
    with CallbackReceiver() as receiver:
        answer = server.submit(FIXTURES / "jfk_x8_streamed.mkv", "video/x-matroska", callback=receiver.url)
        assert answer.status == 202
        (call,) = receiver.wait_for(1)
        time.sleep(0.5)
        assert len(receiver.requests) == 1
    assert call.headers["x-status"] == "Failed"
    assert "60 s" in call.headers["x-error"] and call.body.decode() == call.headers["x-error"]
    poll = server.poll(call.headers["x-requestid"])
    assert poll.status == 200 and poll.headers["x-status"] == "Failed"


def test_wait_returns_the_result(server: Server) -> None:
    answer = server.submit(corpus("jfk.flac"), "audio/flac", channel_layout="0", wait="60", format="txt")
    assert answer.status == 200 and answer.headers["x-status"] == "Completed"
    assert wer(JFK_TEXT, answer.body.decode()) <= 0.1


def test_bad_input_answers_4xx_with_envelope(server: Server) -> None:
    for status, body, content_type, params in [
        (415, b"abc", "text/plain", {}),
        (422, b"\x00" * 5000, "audio/wav", {}),
        (400, corpus("stereo_diarization.wav").read_bytes(), "audio/wav", {"channel_layout": "x"}),
        (422, corpus("stereo_diarization.wav").read_bytes(), "audio/wav", {"channel_layout": "3"}),
    ]:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        answer = http("POST", f"{server.url}/v1/transcribe?{query}", body, {"Content-Type": content_type})
        assert answer.status == status
        assert json.loads(answer.body)["error"]["code"]
    assert http("GET", server.url + "/healthz").status == 200


def test_offline_cli_transcribes(tmp_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "speechsvc",
            "transcribe",
            str(corpus("stereo_diarization.wav")),
            "--channel-labels",
            "agent,customer",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    lines = dict(line.split(": ", 1) for line in run.stdout.strip().splitlines())
    assert wer(STEREO_TEXTS[0], lines["agent"]) <= 0.1 and wer(STEREO_TEXTS[1], lines["customer"]) <= 0.2
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "speechsvc",
            "transcribe",
            str(FIXTURES / "no_audio.mp4"),
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert bad.returncode == 1 and "no audio stream" in bad.stderr


def test_offline_cli_shows_progress_for_long_files(tmp_path: Path) -> None:
    # 15 s of stereo at 48 kHz (each 16 kHz sample held three times): over the 2 MB threshold with a third
    # of the speech to decode that 40 s at 16 kHz would take
    tiled = long_stereo_call(tmp_path / "tiled.wav", repeats=3)
    with wave.open(str(tiled)) as source:
        samples = np.frombuffer(source.readframes(source.getnframes()), "<i2").reshape(-1, 2) / 32768
    call = write_wav(tmp_path / "call.wav", [np.repeat(samples[:, c], 3) for c in (0, 1)], rate=48000)
    assert call.stat().st_size > LONG_FILE_BYTES
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "speechsvc",
            "transcribe",
            str(call),
            "--format",
            "srt",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "call.wav: 100%|" in run.stderr  # tqdm's bar on stderr
    assert run.stdout.startswith("1\n00:00:00,") and "[0.1]" in run.stdout  # the result alone on stdout
