"""The container images as operators run them (Containerfile, built by deploy/container/build.sh with
podman from a Debian base made with debootstrap): the CPU image serves and transcribes as a non-root user
with its health check; an API container and a worker container share one PostgreSQL; the CUDA image's
libraries load and, without a GPU, it transcribes on the CPU and says so."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator

import pytest

from tests.acceptance.containers import (
    BUILD_TIMEOUT_S,
    Built,
    built_image,
    container,
    podman,
    run,
    volume,
    wait_ready,
)
from tests.acceptance.server import free_port, http
from tests.conftest import JFK_TEXT, corpus
from tests.integration.helpers import wer

pytestmark = [pytest.mark.model, pytest.mark.container, pytest.mark.timeout(2 * BUILD_TIMEOUT_S)]
IMAGE_UID = "10001"
PG_SOCKET = "/run/postgresql"  # where the containers see the host's PostgreSQL socket


@pytest.fixture(scope="session")
def cpu_image(request: pytest.FixtureRequest) -> Iterator[Built]:
    yield from built_image(request, "cpu")


@pytest.fixture(scope="session")
def cuda_image(request: pytest.FixtureRequest) -> Iterator[Built]:
    yield from built_image(request, "cuda")


def create_key(image: str, options: tuple[str, ...]) -> str:
    created = run(image, "keys", "create", "tests", options=options)
    assert created.returncode == 0, created.stderr
    return created.stdout.split()[-1]


def transcribe_jfk(port: int, key: str) -> None:
    answer = http(
        "POST",
        f"http://127.0.0.1:{port}/v1/transcribe?channel_layout=0&wait=60&format=txt",
        corpus("jfk.flac").read_bytes(),
        {"Content-Type": "audio/flac", "Authorization": f"Bearer {key}"},
    )
    assert answer.status == 200 and answer.headers["x-status"] == "Completed", answer.body
    assert wer(JFK_TEXT, answer.body.decode()) <= 0.1


def test_image_serves_as_non_root_with_its_health_check(cpu_image: Built) -> None:
    port = free_port()
    with volume() as data:
        key = create_key(cpu_image.image, ("--volume", f"{data}:/data"))
        options = ("--volume", f"{data}:/data", "--env", f"SPEECHSVC_PORT={port}")
        with container(cpu_image.image, options=options) as name:  # the default command: serve on 0.0.0.0
            wait_ready(name, port)
            transcribe_jfk(port, key)
            refused = http("GET", f"http://127.0.0.1:{port}/v1/models")
            assert refused.status == 401  # on 0.0.0.0 with a key in its volume: auth is on
            assert podman("exec", name, "id", "-u").stdout.strip() == IMAGE_UID
            healthcheck = podman(
                "image", "inspect", "--format", "{{json .Config.Healthcheck}}", cpu_image.image
            ).stdout
            assert "speechsvc-healthcheck.py" in healthcheck
            assert podman("healthcheck", "run", name, check=False).returncode == 0
            podman("kill", "--signal", "STOP", name)  # a node that stops answering is unhealthy
            assert podman("healthcheck", "run", name, check=False).returncode != 0
            podman("kill", "--signal", "CONT", name)


def socket_url(url: str) -> tuple[str, tuple[str, ...]]:
    """The session's PostgreSQL (a Unix socket in its 0700 data directory) as the containers reach it: the
    socket file alone mounted into a directory the image's user may enter."""
    parts = urllib.parse.urlsplit(url)
    host_dir = urllib.parse.parse_qs(parts.query)["host"][0]
    query = urllib.parse.urlencode({"host": PG_SOCKET})
    mount = ("--volume", f"{host_dir}/.s.PGSQL.5432:{PG_SOCKET}/.s.PGSQL.5432")
    return urllib.parse.urlunsplit(parts._replace(query=query)), mount


def test_api_and_worker_containers_complete_a_job_on_one_postgres(
    cpu_image: Built, postgres_url: str
) -> None:
    url, mount = socket_url(postgres_url)
    shared = (*mount, "--env", f"SPEECHSVC_DATABASE={url}")
    key = create_key(cpu_image.image, shared)  # the first key, as the README says to make it
    api_port, worker_port = free_port(), free_port()
    api_options = (*shared, "--env", f"SPEECHSVC_PORT={api_port}")
    worker_options = (*shared, "--env", f"SPEECHSVC_METRICS_PORT={worker_port}")
    with (
        container(cpu_image.image, "serve", "--no-worker", options=api_options) as api,
        container(cpu_image.image, "worker", options=worker_options) as worker,
    ):
        wait_ready(api, api_port)
        wait_ready(worker, worker_port)
        transcribe_jfk(api_port, key)  # the API node never loads a model: the worker container ran the job
        assert podman("healthcheck", "run", worker, check=False).returncode == 0


def test_cuda_image_loads_its_libraries_and_runs_on_the_cpu_without_a_gpu(cuda_image: Built) -> None:
    probe = (
        "import ctypes, ctranslate2; ctypes.CDLL('libcublas.so.12'); ctypes.CDLL('libcudnn.so.9'); "
        "ctypes.CDLL('libcudnn_ops.so.9'); print(ctranslate2.get_cuda_device_count())"
    )
    loaded = run(cuda_image.image, "-c", probe, options=("--entrypoint", "python"))
    assert loaded.returncode == 0 and loaded.stdout.strip() == "0", loaded.stderr
    audio = ("--volume", f"{corpus('jfk.flac')}:/audio/jfk.flac:ro")
    command = [
        "transcribe",
        "--log-level",
        "debug",
        "--channel-layout",
        "0",
        "--format",
        "txt",
        "/audio/jfk.flac",
    ]
    done = run(cuda_image.image, *command, options=audio)
    assert done.returncode == 0, done.stderr
    assert "CTranslate2 sees no CUDA GPU; running on the CPU" in done.stderr
    assert wer(JFK_TEXT, done.stdout) <= 0.1
