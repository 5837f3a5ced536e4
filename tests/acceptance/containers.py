"""podman for the image tests, set up as `make image` sets it up (deploy/podman/settings.sh): each image
built once per session by deploy/container/build.sh under its test tag, and containers and volumes that
are always removed. The test images stay, as the build cache in /var/tmp/speechsvc-containers does, on
purpose: removing an image removes the untagged layers below it, and with them the cached dependencies
(a rebuild then takes minutes instead of seconds)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from tests.acceptance.server import http
from tests.conftest import ROOT

BUILD_TIMEOUT_S = 1500.0  # a cold build downloads the dependencies (and 1.4 GB of CUDA libraries)
READY_TIMEOUT_S = 120.0
DEBOOTSTRAP_BASE = "localhost/speechsvc-base:bookworm"


def podman_env() -> dict[str, str]:
    """The environment for podman: this machine's, with the project's settings (runc, cgroupfs, storage)."""
    settings = subprocess.run(
        [str(ROOT / "deploy/podman/settings.sh")], capture_output=True, text=True, check=True, timeout=60
    )
    env = dict(os.environ)
    env.update(line.split("=", 1) for line in settings.stdout.splitlines())  # type: ignore[misc]
    return env


def podman(*args: str, check: bool = True, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout_s, env=podman_env()
    )
    if check and done.returncode:
        raise AssertionError(f"podman {' '.join(args)} exited with {done.returncode}: {done.stderr[-2000:]}")
    return done


def skip_without_tools() -> None:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (make container-tools installs it as root)")
    if (
        shutil.which("debootstrap") is None
        and podman("image", "exists", DEBOOTSTRAP_BASE, check=False).returncode
    ):
        pytest.skip(
            "debootstrap is not installed, for the base image (make container-tools installs it as root)"
        )


@dataclass
class Built:
    image: str
    seconds: float
    size_bytes: int


def build(target: str) -> Built:
    """deploy/container/build.sh for `target` (cpu or cuda), tagged localhost/speechsvc:test-TARGET."""
    image = f"localhost/speechsvc:test-{target}"
    start = time.monotonic()
    done = subprocess.run(
        [str(ROOT / "deploy/container/build.sh"), target],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        env={**os.environ, "IMAGE": image},
    )
    if done.returncode:
        raise AssertionError(f"build.sh {target} exited with {done.returncode}:\n{done.stderr[-4000:]}")
    size = int(podman("image", "inspect", "--format", "{{.Size}}", image).stdout)
    return Built(image, time.monotonic() - start, size)


def built_image(request: pytest.FixtureRequest, target: str) -> Iterator[Built]:
    """A session's image of `target`; its size and build time printed (the issue asks for them)."""
    skip_without_tools()
    built = build(target)
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    report = request.config.pluginmanager.get_plugin("terminalreporter")
    if capture is not None and report is not None:
        with capture.global_and_fixture_disabled():
            report.write_line(
                f"\nimage {target}: {built.size_bytes / 2**30:.2f} GiB, built in {built.seconds:.0f} s"
            )
    yield built


@contextmanager
def volume() -> Iterator[str]:
    name = f"speechsvc-test-{uuid.uuid4().hex[:8]}"
    podman("volume", "create", name)
    try:
        yield name
    finally:
        podman("volume", "rm", "--force", name, check=False)


@contextmanager
def container(image: str, *args: str, options: tuple[str, ...] = ()) -> Iterator[str]:
    """A detached container on the host's network (the tests reach it on loopback), removed at the end."""
    name = f"speechsvc-test-{uuid.uuid4().hex[:8]}"
    podman("run", "--detach", "--name", name, "--network", "host", *options, image, *args)
    try:
        yield name
    finally:
        podman("rm", "--force", "--volumes", "--time", "5", name, check=False)


def wait_ready(name: str, port: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        state = podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
        if state != "running":
            raise AssertionError(f"container {state}:\n{logs(name)}")
        try:
            if http("GET", f"http://127.0.0.1:{port}/readyz", timeout_s=2).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"not ready in {READY_TIMEOUT_S:g} s:\n{logs(name)}")


def logs(name: str) -> str:
    done = podman("logs", name, check=False)
    return done.stdout + done.stderr


def run(image: str, *args: str, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """A container run to its end (then removed): its output."""
    return podman("run", "--rm", "--network", "host", *options, image, *args, check=False, timeout_s=300)
