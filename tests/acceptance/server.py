"""The real `python -m speechsvc serve` as a subprocess on a free loopback port, and a tiny HTTP client."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

READY_TIMEOUT_S = 120.0


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
         timeout_s: float = 120.0) -> Answer:  # fmt: skip
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return Answer(
                response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
            )
    except urllib.error.HTTPError as error:
        return Answer(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`speechsvc serve` (or `speechsvc worker`, whose port is its --metrics-port) as a subprocess."""

    def __init__(self, data_dir: Path, *args: str, port: int | None = None, command: str = "serve") -> None:
        self.data_dir = data_dir
        self.args = args
        self.command = command
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPEECHSVC_")}
        port_flag = "--metrics-port" if self.command == "worker" else "--port"
        command = [sys.executable, "-m", "speechsvc", self.command, "--host", "127.0.0.1", port_flag, str(self.port),
                   "--data-dir", str(self.data_dir), *self.args]  # fmt: skip
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if http("GET", self.url + "/readyz", timeout_s=2).status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not ready in {READY_TIMEOUT_S} s:\n{self.log.read_text()}")

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def terminate(self, timeout_s: float = 60.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def submit(self, path: Path, content_type: str = "audio/wav", **params: str) -> Answer:
        query = urllib.parse.urlencode(params)
        return http(
            "POST", f"{self.url}/v1/transcribe?{query}", path.read_bytes(), {"Content-Type": content_type}
        )

    def poll(self, request_id: str, headers: dict[str, str] | None = None, **params: str) -> Answer:
        query = urllib.parse.urlencode(params)
        return http("GET", f"{self.url}/v1/transcribe/{request_id}?{query}", headers=headers)

    def wait_status(
        self,
        request_id: str,
        statuses: set[str],
        timeout_s: float = 120.0,
        headers: dict[str, str] | None = None,
        **params: str,
    ) -> Answer:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            answer = self.poll(request_id, headers, **params)
            if answer.headers.get("x-status") in statuses:
                return answer
            time.sleep(0.1)
        raise AssertionError(f"{request_id} did not reach {statuses}")


def start_with_key(data_dir: Path, *args: str) -> tuple[Server, str]:
    """A server whose store holds one API key (so auth is on even on loopback), and that key."""
    created = subprocess.run([sys.executable, "-m", "speechsvc", "keys", "create", "tests", "--data-dir", str(data_dir)],
                             capture_output=True, text=True, check=True)  # fmt: skip
    return Server(data_dir, *args).start(), created.stdout.split()[-1]
