"""One test per rejection path of the raw-binary dialect: the right status, the JSON error envelope,
nothing left behind, never a 5xx. Real app, real SQLite, real PyAV; a fake transcriber."""

import io
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import av
import pytest
from aiohttp.test_utils import TestClient

from speechsvc.app import create_app
from tests.conftest import FIXTURES, corpus, fake_registry, long_stereo_call, make_config
from tests.integration.helpers import poll_until

ClientFactory = Callable[..., Awaitable[TestClient]]
STEREO = corpus("stereo_diarization.wav")
UPLOAD_CAP = 400_000


@pytest.fixture
async def client(aiohttp_client: ClientFactory, tmp_path: Path) -> TestClient:
    config = make_config(tmp_path, max_upload_bytes=UPLOAD_CAP, max_duration_s=60.0)
    return await aiohttp_client(create_app(config, registry=fake_registry(tmp_path)))


async def expect_error(response: Any, status: int, code: str, param: str | None = "any") -> dict[str, Any]:
    assert response.status == status, await response.text()
    body = await response.json()
    assert {"error", "request_id"} <= set(body)  # extra fields (e.g. received_bytes) may stand beside them
    assert set(body["error"]) == {"message", "type", "code", "param"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    if param != "any":
        assert body["error"]["param"] == param
    return body


def nothing_stored(tmp_path: Path) -> bool:
    data = tmp_path / "data"
    return not any((data / "spool").iterdir()) and not any((data / "audio").iterdir())


async def post(client: TestClient, body: Any, content_type: str = "audio/wav", **params: str) -> Any:
    return await client.post(
        "/v1/transcribe", data=body, params=params, headers={"Content-Type": content_type}
    )


@pytest.mark.parametrize("layout", ["a", "0,0", "-1", "0..1", "0,"])
async def test_400_bad_channel_layout(client: TestClient, layout: str) -> None:
    response = await post(client, io.BytesIO(STEREO.read_bytes()), channel_layout=layout)
    await expect_error(response, 400, "invalid_channel_layout", "channel_layout")


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"format": "pdf"}, "invalid_request", "format"),
        ({"beam_size": "11"}, "invalid_request", "beam_size"),
        ({"wait": "301"}, "invalid_request", "wait"),
        ({"vad": "maybe"}, "invalid_request", "vad"),
        ({"task": "summarise"}, "invalid_request", "task"),
        ({"task": "translate"}, "invalid_request", "task"),  # tiny.en is English-only
        ({"language": "xx"}, "unsupported_language", "language"),
        ({"language": "de"}, "unsupported_language", "language"),
        ({"callback": "ftp://example.org/x"}, "invalid_callback_url", "callback"),
        ({"callback": "http://169.254.169.254/latest"}, "invalid_callback_url", "callback"),
        ({"callback": "http://[fe80::1]/x"}, "invalid_callback_url", "callback"),
        ({"userdata": "x" * 4097}, "invalid_request", "userdata"),
        ({"channel_layout": "0", "channel_labels": "a,b"}, "invalid_request", "channel_labels"),
    ],
)
async def test_400_bad_parameters(client: TestClient, tmp_path: Path, params: dict[str, str], code: str,
                                  param: str) -> None:  # fmt: skip
    response = await post(client, io.BytesIO(STEREO.read_bytes()), **params)
    await expect_error(response, 400, code, param)
    assert nothing_stored(tmp_path)


async def test_400_label_count_checked_against_the_file(client: TestClient, tmp_path: Path) -> None:
    response = await post(client, io.BytesIO(STEREO.read_bytes()), channel_labels="only-one")
    await expect_error(response, 400, "invalid_request", "channel_labels")
    assert nothing_stored(tmp_path)


async def test_400_empty_body(client: TestClient) -> None:
    await expect_error(await post(client, b""), 400, "missing_body")


async def test_404_unknown_model(client: TestClient) -> None:
    await expect_error(await post(client, io.BytesIO(STEREO.read_bytes()), model="large-v3"), 404,
                       "model_not_found", "model")  # fmt: skip


async def test_404_model_path_from_a_request(client: TestClient) -> None:
    # a client may not point the server at a directory on its disk
    await expect_error(
        await post(client, io.BytesIO(STEREO.read_bytes()), model="/tmp"), 404, "model_not_found"
    )


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
async def test_404_unknown_request_id(client: TestClient, method: str) -> None:
    response = await client.request(method, "/v1/transcribe/0123456789abcdef")
    assert response.status == 404
    if method != "HEAD":
        await expect_error(response, 404, "request_not_found")


async def test_413_content_length_over_the_cap(client: TestClient, tmp_path: Path) -> None:
    response = await post(client, io.BytesIO(b"\0" * (UPLOAD_CAP + 1)))
    await expect_error(response, 413, "file_too_large")
    assert nothing_stored(tmp_path)


async def test_413_chunked_body_over_the_cap(client: TestClient, tmp_path: Path) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"\1" * 50_000  # 500 kB, no Content-Length

    response = await post(client, chunks())
    await expect_error(response, 413, "file_too_large")
    assert nothing_stored(tmp_path)


async def test_chunked_body_under_the_cap_is_accepted(client: TestClient) -> None:
    data = STEREO.read_bytes()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 65_536):
            yield data[start : start + 65_536]

    response = await post(client, chunks())
    assert response.status == 202


async def test_413_declared_duration_over_the_limit(client: TestClient, tmp_path: Path) -> None:
    # 65 s of real speech (> the 60 s limit) as Opus in Matroska: small enough for the byte cap, and
    # the container declares its duration, so the answer comes at submit time
    wav = long_stereo_call(tmp_path / "long.wav", repeats=13)
    small = tmp_path / "long.mka"
    with av.open(str(wav)) as source, av.open(str(small), "w", format="matroska") as out:
        stream = out.add_stream("libopus", rate=16000, layout="stereo")
        stream.bit_rate = 16000
        for frame in source.decode(audio=0):
            frame.pts = None
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    assert small.stat().st_size < UPLOAD_CAP
    response = await post(client, io.BytesIO(small.read_bytes()), "video/x-matroska")
    await expect_error(response, 413, "audio_too_long")
    assert nothing_stored(tmp_path)


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", "image/png", "audio/x-unknown"])
async def test_415_wrong_content_type(client: TestClient, content_type: str) -> None:
    await expect_error(
        await post(client, io.BytesIO(STEREO.read_bytes()), content_type), 415, "unsupported_media_type"
    )


async def test_422_channel_out_of_range(client: TestClient, tmp_path: Path) -> None:
    for layout in ("2", "1.0", "0,5"):
        response = await post(client, io.BytesIO(STEREO.read_bytes()), channel_layout=layout)
        await expect_error(response, 422, "channel_out_of_range", "channel_layout")
    assert nothing_stored(tmp_path)


@pytest.mark.parametrize("seed", range(5))
async def test_422_garbage_bytes(client: TestClient, tmp_path: Path, seed: int) -> None:
    garbage = random.Random(seed).randbytes(50_000)
    response = await post(client, io.BytesIO(garbage), "application/octet-stream")
    await expect_error(response, 422, "undecodable_audio")
    assert nothing_stored(tmp_path)


async def test_422_playlist_is_never_opened(client: TestClient, tmp_path: Path) -> None:
    secret = tmp_path / "secret.wav"
    secret.write_bytes(STEREO.read_bytes())
    playlist = f"#EXTM3U\n#EXT-X-TARGETDURATION:5\n#EXTINF:5,\n{secret}\n#EXT-X-ENDLIST\n".encode()
    await expect_error(
        await post(client, io.BytesIO(playlist), "application/octet-stream"), 422, "undecodable_audio"
    )


async def test_422_no_audio_stream(client: TestClient) -> None:
    response = await post(client, io.BytesIO((FIXTURES / "no_audio.mp4").read_bytes()), "video/mp4")
    await expect_error(response, 422, "no_audio_stream")


async def test_422_header_only_wav(client: TestClient) -> None:
    response = await post(client, io.BytesIO(STEREO.read_bytes()[:44]))
    assert response.status == 422, await response.text()


@pytest.mark.parametrize("cut", [100, 1_000, 30_000, 160_000])
async def test_truncated_files_are_4xx_or_a_clean_result(client: TestClient, cut: int) -> None:
    for name in ("jfk.mp3", "jfk.m4a", "jfk.ogg", "two_streams.mkv"):
        body = (FIXTURES / name).read_bytes()[:cut]
        response = await post(client, io.BytesIO(body), "application/octet-stream", wait="10")
        assert response.status in (200, 400, 413, 415, 422), (name, cut, response.status)
        if response.status == 200:
            assert response.headers["x-status"] in ("Completed", "Failed")


async def test_server_keeps_working_after_all_that(client: TestClient) -> None:
    for _ in range(3):
        await post(client, io.BytesIO(os.urandom(1000)), "application/octet-stream")
    response = await post(client, io.BytesIO(STEREO.read_bytes()))
    assert response.status == 202
    done = await poll_until(client, response.headers["x-requestid"], {"Completed"})
    assert done.status == 200


async def test_422_too_many_channels_in_all_streams(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    config = make_config(tmp_path, max_channels=2)  # two_streams.mkv holds 1 + 2 channels
    client = await aiohttp_client(create_app(config, registry=fake_registry(tmp_path)))
    body = io.BytesIO((FIXTURES / "two_streams.mkv").read_bytes())
    response = await client.post("/v1/transcribe", data=body, headers={"Content-Type": "video/x-matroska"})
    error = await expect_error(response, 422, "too_many_channels")
    assert "3 audio channels in 2 stream(s)" in error["error"]["message"]
