"""The security review's findings (issue 14), one test or more each, on the real app (real SQLite, real
PyAV, the fake transcriber). Finding 1 (SSRF through host spellings) is in test_address_policy.py, finding 6
(decoded audio in memory) in tests/acceptance/test_memory.py."""

import asyncio
import hashlib
import io
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from speechsvc.__main__ import main
from speechsvc.access.auth import KeyScope, create_key
from speechsvc.api.keys import STORE
from speechsvc.audio.decode import decode_channels
from speechsvc.audio.layout import ChannelRef
from speechsvc.errors import DecodedTooLarge, InsufficientStorage
from speechsvc.jobs.model import JobStatus
from speechsvc.operations.disk import DiskGuard, Usage
from tests.conftest import FIXTURES, corpus, long_stereo_call
from tests.integration.helpers import poll_until
from tests.test_hardening.test_rejections import expect_error

STEREO = corpus("stereo_diarization.wav").read_bytes()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def submit(client: TestClient, key: str, body: bytes = STEREO, **params: str) -> Any:
    return await client.post(
        "/v1/transcribe",
        data=io.BytesIO(body),
        params=params,
        headers={"Content-Type": "audio/wav", **bearer(key)},
    )


def form(body: bytes = STEREO, **fields: str) -> aiohttp.FormData:
    data = aiohttp.FormData()
    for name, value in fields.items():
        data.add_field(name, value)
    data.add_field("file", io.BytesIO(body), filename="call.wav", content_type="audio/wav")
    return data


class LoopLag:
    """The longest the event loop went without running a 10 ms ticker: a stall of the server's handlers
    (client and server share the loop in these tests)."""

    def __init__(self) -> None:
        self.worst_s = 0.0

    async def __aenter__(self) -> "LoopLag":
        self.task = asyncio.create_task(self._tick())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.sleep(0.05)  # let the ticker wake and record the last gap before it is stopped
        self.task.cancel()

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            self.worst_s = max(self.worst_s, loop.time() - before - 0.01)


# --- Finding 2: every job, upload and webhook has an owner; a key sees only its own ----------------------


async def tenants(make_client: Any, **config: Any) -> tuple[TestClient, str, str, str]:
    client = await make_client(**config)
    store = client.app[STORE]
    _, alice = await create_key(store, "alice")
    _, bob = await create_key(store, "bob")
    _, ops = await create_key(store, "ops", KeyScope.ADMIN)
    return client, alice, bob, ops


async def test_a_key_sees_only_its_own_raw_jobs(make_client: Any) -> None:
    client, alice, bob, ops = await tenants(make_client)
    job = (await (await submit(client, alice)).json())["request_id"]
    await poll_until_with(client, job, alice)
    for method in ("GET", "HEAD", "DELETE"):  # 404 as for a job that does not exist, never 403
        response = await client.request(method, f"/v1/transcribe/{job}", headers=bearer(bob))
        assert response.status == 404, method
        if method != "HEAD":
            await expect_error(response, 404, "request_not_found")
    assert (await client.get(f"/v1/transcribe/{job}", headers=bearer(alice))).status == 200
    assert (await client.get(f"/v1/transcribe/{job}", headers=bearer(ops))).status == 200  # admin sees all
    assert (await client.delete(f"/v1/transcribe/{job}", headers=bearer(alice))).status == 204


async def poll_until_with(client: TestClient, job: str, key: str) -> None:
    for _ in range(600):
        answer = await client.get(f"/v1/transcribe/{job}", headers=bearer(key))
        if answer.headers.get("x-status") in ("Completed", "Failed"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{job} did not finish")


async def test_a_key_sees_only_its_own_transcription_jobs(make_client: Any) -> None:
    client, alice, bob, ops = await tenants(make_client, delay_s=0.2)
    created = await client.post("/v1/transcription-jobs", data=form(), headers=bearer(alice))
    job = (await created.json())["id"]
    for path in (f"/v1/transcription-jobs/{job}", f"/v1/transcription-jobs/{job}/result"):
        await expect_error(await client.get(path, headers=bearer(bob)), 404, "request_not_found")
    cancel = await client.post(f"/v1/transcription-jobs/{job}/cancel", headers=bearer(bob))
    await expect_error(cancel, 404, "request_not_found")
    view = await (await client.get(f"/v1/transcription-jobs/{job}", headers=bearer(ops))).json()
    assert view["status"] in ("queued", "running")  # bob's cancel did nothing
    canceled = await client.post(f"/v1/transcription-jobs/{job}/cancel", headers=bearer(alice))
    assert (await canceled.json())["status"] == "canceled"


async def test_a_key_sees_only_its_own_uploads(make_client: Any) -> None:
    client, alice, bob, ops = await tenants(make_client)
    size = len(STEREO)
    created = await client.post(
        "/v1/audio/uploads",
        json={"file_name": "a.wav", "mime_type": "audio/wav", "size_bytes": size},
        headers=bearer(alice),
    )
    upload = await created.json()
    put = await client.put(upload["upload_url"].replace(str(client.make_url("")), ""), data=STEREO)
    assert put.status == 200
    path = f"/v1/audio/uploads/{upload['id']}"
    await expect_error(await client.get(path, headers=bearer(bob)), 404, "upload_not_found")
    await expect_error(await client.post(path + "/complete", headers=bearer(bob)), 404, "upload_not_found")
    assert (await client.get(path, headers=bearer(alice))).status == 200
    assert (await client.get(path, headers=bearer(ops))).status == 200
    completed = await client.post(path + "/complete", headers=bearer(alice))
    assert (await completed.json())["status"] == "completed"
    stolen = await client.post("/v1/audio/jobs", json={"upload_id": upload["id"]}, headers=bearer(bob))
    await expect_error(stolen, 404, "upload_not_found")
    job = await client.post("/v1/audio/jobs", json={"upload_id": upload["id"]}, headers=bearer(alice))
    assert job.status == 202
    job_id = (await job.json())["id"]
    await expect_error(
        await client.get(f"/v1/audio/jobs/{job_id}", headers=bearer(bob)), 404, "request_not_found"
    )
    assert (await client.get(f"/v1/audio/jobs/{job_id}", headers=bearer(alice))).status == 200
    rows = await client.app[STORE]._fetch("SELECT owner FROM uploads UNION ALL SELECT owner FROM jobs")
    assert {row[0] for row in rows} == {(await key_id(client, "alice"))}


async def key_id(client: TestClient, name: str) -> str:
    return next(row["id"] for row in await client.app[STORE].list_keys() if row["name"] == name)


async def test_webhook_deliveries_belong_to_the_job_owner(make_client: Any) -> None:
    client, alice, _, _ = await tenants(make_client)
    data = form(callback_url="http://hooks.invalid/cb")
    job = (await (await client.post("/v1/transcription-jobs", data=data, headers=bearer(alice))).json())["id"]
    for _ in range(200):
        rows = await client.app[STORE]._fetch("SELECT owner FROM webhooks WHERE job_id = ?", (job,))
        if rows:
            break
        await asyncio.sleep(0.05)
    assert [row[0] for row in rows] == [await key_id(client, "alice")]


async def test_per_key_queue_share(make_client: Any, tmp_path: Path) -> None:
    client, alice, bob, _ = await tenants(make_client, delay_s=0.3, max_queue_per_key=1)
    long_call = long_stereo_call(tmp_path / "long.wav", repeats=4).read_bytes()
    running = (await (await submit(client, alice, long_call)).json())["request_id"]
    answers = [await submit(client, alice, long_call) for _ in range(6)]  # the job workers fill up, then the
    statuses = [answer.status for answer in answers]  # waiting share: one job, then 429
    assert 202 in statuses and statuses[-1] == 429, statuses
    refused = answers[-1]
    await expect_error(refused, 429, "key_queue_full")
    assert int(refused.headers["Retry-After"]) > 0
    waiting = await client.app[STORE].count_status(JobStatus.QUEUED, owner=await key_id(client, "alice"))
    assert waiting == 1
    assert (await submit(client, bob)).status == 202  # bob is not starved by alice
    assert running


def test_keys_cli_creates_admin_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    assert main(["keys", "create", "ops", "--scope", "admin", *data]) == 0
    assert "created admin key" in capsys.readouterr().out
    assert main(["keys", "create", "crm", *data]) == 0
    assert "created tenant key" in capsys.readouterr().out
    assert main(["keys", "list", *data]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert "scope" in listing[0]
    assert any("ops" in line and "admin" in line for line in listing)
    assert any("crm" in line and "tenant" in line for line in listing)


# --- Finding 3: upload bytes capped by the declared size; the disk guard ---------------------------------


async def new_upload(client: TestClient, size: int) -> dict[str, Any]:
    response = await client.post(
        "/v1/audio/uploads", json={"file_name": "a.wav", "mime_type": "audio/wav", "size_bytes": size}
    )
    assert response.status == 201
    upload: dict[str, Any] = await response.json()
    upload["path"] = upload["upload_url"].replace(str(client.make_url("")), "")
    return upload


async def test_a_whole_file_put_is_capped_by_the_declared_size(make_client: Any, tmp_path: Path) -> None:
    client = await make_client(max_upload_bytes=1024**2)
    upload = await new_upload(client, 100)
    big = await client.put(upload["path"], data=io.BytesIO(b"x" * (3 * 1024**2)))  # Content-Length: 3 MiB
    await expect_error(big, 413, "file_too_large")

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: caught while streaming
        for _ in range(64):
            yield b"y" * 4096

    streamed = await client.put(upload["path"], data=chunked())
    await expect_error(streamed, 413, "file_too_large")
    view = await (await client.get(f"/v1/audio/uploads/{upload['id']}")).json()
    assert view["received_bytes"] == 0
    stored = list((tmp_path / "data" / "uploads").iterdir())
    assert [path.stat().st_size for path in stored] == [0]
    short = await client.put(upload["path"], data=b"z" * 60)
    await expect_error(short, 400, "invalid_request")
    exact = await client.put(upload["path"], data=b"w" * 100)
    assert exact.status == 200 and (await exact.json())["received_bytes"] == 100


async def test_disk_budget_gives_507_and_keeps_nothing(make_client: Any, tmp_path: Path) -> None:
    client = await make_client(max_disk_bytes=len(STEREO) + 1000)
    assert (await submit_open(client)).status == 202  # fits: now the audio folder holds one call
    refused = await submit_open(client)
    await expect_error(refused, 507, "insufficient_storage")
    assert int(refused.headers["Retry-After"]) > 0
    assert list((tmp_path / "data" / "spool").glob("*.upload")) == []
    refused = await client.post("/v1/audio/transcriptions", data=form())
    await expect_error(refused, 507, "insufficient_storage")
    upload = await new_upload(client, len(STEREO))
    await expect_error(await client.put(upload["path"], data=STEREO), 507, "insufficient_storage")


async def submit_open(client: TestClient) -> Any:
    return await client.post("/v1/transcribe", data=io.BytesIO(STEREO), headers={"Content-Type": "audio/wav"})


def test_disk_guard_keeps_ten_percent_free_by_default(tmp_path: Path) -> None:
    guard = DiskGuard(tmp_path, [tmp_path], 0, usage=lambda _: Usage(total=1000, used=850, free=150))
    guard.check(50)  # 100 left: exactly 10 %
    with pytest.raises(InsufficientStorage):
        guard.check(51)


# --- Finding 4: channel_layout parsing is linear and bounded ---------------------------------------------


async def test_huge_channel_layout_is_refused_without_stalling(make_client: Any) -> None:
    client = await make_client()
    layout = ",".join(f"{i // 1000}.{i % 1000}" for i in range(12518))  # 96 KB, 12,518 distinct entries
    async with LoopLag() as lag:
        # a query line is capped by aiohttp at 8 KB; JSON and form bodies carry the long ones
        response = await submit_open_with(client, channel_layout=layout[:8000].rsplit(",", 1)[0])
        await expect_error(response, 400, "invalid_channel_layout")
        response = await client.post("/v1/audio/jobs", json={"upload_id": "upl_x", "channel_layout": layout})
        await expect_error(response, 404, "upload_not_found")  # the upload is looked up first
        short = layout[:60000].rsplit(",", 1)[0]  # a form field holds at most 64 KiB
        response = await client.post("/v1/audio/transcriptions", data=form(channel_layout=short))
        await expect_error(response, 400, "invalid_channel_layout")
    assert lag.worst_s < 0.1, lag.worst_s
    response = await submit_open_with(client, channel_layout=",".join(str(i) for i in range(33)))
    await expect_error(response, 400, "invalid_channel_layout")  # more than --max-channels


async def submit_open_with(client: TestClient, **params: str) -> Any:
    return await client.post(
        "/v1/transcribe", data=io.BytesIO(STEREO), params=params, headers={"Content-Type": "audio/wav"}
    )


# --- Finding 5: revoking the last key does not turn authentication off ----------------------------------


async def test_revoking_the_last_key_keeps_auth_on(make_client: Any) -> None:
    client = await make_client()
    store = client.app[STORE]
    _, key = await create_key(store, "only")
    assert (await submit(client, key)).status == 202
    assert await store.revoke_key("only") == 1
    await expect_error(await submit(client, key), 401, "invalid_api_key")
    await expect_error(await submit_open(client), 401, "invalid_api_key")


# --- Finding 7: complete takes the upload's lock; the sha256 is of the bytes stored ----------------------


async def test_complete_waits_for_no_put(make_client: Any) -> None:
    client = await make_client()
    upload = await new_upload(client, len(STEREO))
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield STEREO[:1000]
        await release.wait()
        yield STEREO[1000:]

    put = asyncio.create_task(
        client.put(upload["path"], data=slow_body(), headers={"Content-Length": str(len(STEREO))})
    )
    await asyncio.sleep(0.3)  # the PUT holds the lock, blocked on its body
    busy = await client.post(f"/v1/audio/uploads/{upload['id']}/complete")
    await expect_error(busy, 409, "upload_busy")
    release.set()
    assert (await put).status == 200
    done = await client.post(f"/v1/audio/uploads/{upload['id']}/complete")
    assert (await done.json())["sha256"] == hashlib.sha256(STEREO).hexdigest()


# --- Finding 8: inputs that gave 500 ---------------------------------------------------------------------


async def test_deeply_nested_json_is_a_400(make_client: Any) -> None:
    client = await make_client()
    for body in ("[" * 100000, "{" * 50000, '{"size_bytes": ' + "9" * 5000 + "}", "\xff\xfe"):
        response = await client.post(
            "/v1/audio/uploads", data=body.encode("latin-1"), headers={"Content-Type": "application/json"}
        )
        await expect_error(response, 400, "invalid_request")


@pytest.mark.parametrize("control", ["max_lines:²", "max_lines:٣", "line_char_limit:१", "max_lines:99999"])
async def test_non_ascii_digits_in_format_are_a_400(make_client: Any, control: str) -> None:
    client = await make_client()
    await expect_error(await submit_open_with(client, format=f"srt,{control}"), 400, "invalid_request")
    job = (await (await submit_open_with(client)).json())["request_id"]
    await poll_until(client, job, {"Completed"})
    answer = await client.get(f"/v1/transcribe/{job}", params={"format": f"srt,{control}"})
    await expect_error(answer, 400, "invalid_request")


# --- Finding 9: control characters never reach the log raw -----------------------------------------------


async def test_carriage_return_in_a_path_is_escaped_in_the_log(
    make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client()
    with caplog.at_level(logging.INFO, logger="speechsvc.access"):
        await client.get("/v1/transcribe/abc%0d%0aevent=forged%00%1b[31m\u2028x")
    lines = [record.getMessage() for record in caplog.records if record.name == "speechsvc.access"]
    (line,) = [line for line in lines if "abc" in line]
    assert not any(char in line for char in "\r\n\x00\x1b\u2028")
    assert "\\r\\nevent=forged\\x00\\x1b" in line and "\\u2028" in line


# --- Finding 6 (the memory bound itself is in tests/acceptance/test_memory.py): per-job decoded bytes ----


async def test_decoded_bytes_limit_at_submit(make_client: Any) -> None:
    client = await make_client(max_decoded_bytes=500_000)  # 5 s x 2 channels decode to 640 kB
    await expect_error(await submit_open(client), 413, "decoded_too_large")
    one = await submit_open_with(client, channel_layout="0")  # one channel fits
    assert one.status == 202


def test_decoded_bytes_limit_while_decoding() -> None:
    """A stream that declares no duration (headerless mu-law) is stopped by the count of decoded bytes."""
    with pytest.raises(DecodedTooLarge):
        decode_channels(
            FIXTURES / "jfk_headerless.ulaw",
            "audio/basic",
            [ChannelRef(0, 0)],
            max_duration_s=3600,
            max_decoded_bytes=100_000,
        )
    (samples,) = decode_channels(
        FIXTURES / "jfk_headerless.ulaw", "audio/basic", [ChannelRef(0, 0)], max_duration_s=3600,
        max_decoded_bytes=10**7,
    )  # fmt: skip
    assert len(samples) * 4 > 100_000


# --- issue 13, item 7: which id is which -------------------------------------------------------------------


async def test_errors_of_job_endpoints_name_the_job(make_client: Any) -> None:
    client = await make_client()
    response = await client.get("/v1/transcribe/nosuchjob", headers={"X-Request-ID": "http-1"})
    body = await expect_error(response, 404, "request_not_found")
    assert body["job_id"] == "nosuchjob" and body["request_id"] == "http-1"  # the job, and the HTTP request
    assert response.headers["x-requestid"] == "nosuchjob" and response.headers["X-Request-ID"] == "http-1"
    body = await expect_error(await client.get("/v1/transcription-jobs/j-2/result"), 404, "request_not_found")
    assert body["job_id"] == "j-2"
    body = await expect_error(await submit_open_with(client, format="nope"), 400, "invalid_request")
    assert "job_id" not in body  # no job was made
