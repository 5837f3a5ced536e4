"""Decoding runs in a child process: a hang or a crash of FFmpeg fails that file, not the server.

A named pipe stands in for a hostile file: the child blocks reading it, which makes the hang and the
crash (a real SIGSEGV sent to the child) deterministic."""

import io
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from speechsvc.app import create_app
from speechsvc.audio import isolate
from speechsvc.audio.layout import ChannelRef
from speechsvc.errors import JobCanceled, UndecodableAudio
from tests.conftest import FIXTURES, corpus, fake_registry, make_config
from tests.test_hardening.test_rejections import expect_error

ClientFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "hostile.wav"
    os.mkfifo(path)
    yield path


def decoder_children() -> list[int]:
    """PIDs of the forkserver's children (the decoders), found through /proc."""
    forkservers = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
            cmdline = (status.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if f"\nPPid:\t{os.getpid()}\n" in text and b"forkserver" in cmdline:
            forkservers.append(int(status.parent.name))
    children = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        if any(f"\nPPid:\t{pid}\n" in text for pid in forkservers):
            children.append(int(status.parent.name))
    return children


def test_hang_is_cut_off_at_the_time_limit(fifo: Path) -> None:
    started = time.monotonic()
    with pytest.raises(UndecodableAudio, match=r"longer than 0\.5 s"):
        isolate.probe(fifo, "audio/wav", max_channels=8, limits=isolate.DecodeLimits(probe_timeout_s=0.5))
    assert time.monotonic() - started < 5
    assert decoder_children() == []  # killed, reaped


def test_crash_fails_the_file_not_the_process(fifo: Path) -> None:
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            isolate.probe(fifo, "audio/wav", max_channels=8, limits=isolate.DecodeLimits(probe_timeout_s=30))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 10
    while not (children := decoder_children()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert children, "no decoder child appeared"
    for pid in children:
        os.kill(pid, signal.SIGSEGV)
    thread.join(10)
    assert isinstance(outcome[0], UndecodableAudio)
    assert "crashed" in str(outcome[0]) and "SIGSEGV" in str(outcome[0])
    # and this process decodes the next file as if nothing happened
    (left,) = isolate.decode_channels(
        corpus("stereo_diarization.wav"), "audio/wav", [ChannelRef(0, 1)], max_duration_s=60,
        scratch_dir=fifo.parent / "scratch", limits=isolate.DecodeLimits(),
    )  # fmt: skip
    assert len(left) == 80_000


def test_cancel_kills_the_child(fifo: Path) -> None:
    calls = []

    def should_stop() -> None:
        calls.append(1)
        if len(calls) > 3:
            raise JobCanceled()

    with pytest.raises(JobCanceled):
        isolate.decode_channels(fifo, "audio/wav", [ChannelRef(0, 0)], max_duration_s=60,
                                scratch_dir=fifo.parent / "scratch", limits=isolate.DecodeLimits(),
                                should_stop=should_stop)  # fmt: skip
    assert decoder_children() == []
    assert not (fifo.parent / "scratch").exists()


def test_errors_come_back_with_their_class() -> None:
    with pytest.raises(Exception) as info:
        isolate.decode_channels(FIXTURES / "jfk_x8_streamed.mkv", "video/x-matroska", [ChannelRef(0, 0)],
                                max_duration_s=30, scratch_dir=Path("/tmp/unused-scratch"),
                                limits=isolate.DecodeLimits())  # fmt: skip
    assert type(info.value).__name__ == "AudioTooLong" and info.value.status == 413


async def test_memory_limit_fails_cleanly_through_the_api(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    config = make_config(tmp_path, decode_memory_mb=48)  # too little for FFmpeg to decode anything
    client = await aiohttp_client(create_app(config, registry=fake_registry(tmp_path)))
    body = io.BytesIO(corpus("stereo_diarization.wav").read_bytes())
    response = await client.post("/v1/transcribe", data=body, headers={"Content-Type": "audio/wav"})
    await expect_error(response, 422, "undecodable_audio")
    assert (await client.get("/healthz")).status == 200
