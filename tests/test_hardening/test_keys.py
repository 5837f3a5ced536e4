"""API keys: SHA-256 at rest, three header styles, 401 with WWW-Authenticate, the loopback rule,
revocation; the per-key rate limit (429) and the queue cap (503)."""

import hashlib
import io
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from speechsvc.access.auth import RateLimiter, create_key
from speechsvc.api.keys import STORE
from speechsvc.errors import RateLimited
from speechsvc.store import open_url
from tests.conftest import corpus
from tests.test_hardening.test_rejections import expect_error, nothing_stored

ClientFactory = Callable[..., Awaitable[TestClient]]
STEREO = corpus("stereo_diarization.wav").read_bytes()


async def submit(client: TestClient, headers: dict[str, str] | None = None) -> Any:
    return await client.post(
        "/v1/transcribe", data=io.BytesIO(STEREO), headers={"Content-Type": "audio/wav", **(headers or {})}
    )


async def test_loopback_without_keys_needs_no_key(make_client: Any) -> None:
    client = await make_client()
    assert (await submit(client)).status == 202


async def test_401_once_a_key_exists(make_client: Any, tmp_path: Path) -> None:
    client = await make_client()
    _, key = await create_key(client.app[STORE], "crm")
    assert key.startswith("ssk_") and len(key) > 40
    for headers in (
        {},
        {"Authorization": "Bearer ssk_wrong"},
        {"x-api-key": key + "x"},
        {"Authorization": key},
    ):
        response = await submit(client, headers)
        await expect_error(response, 401, "invalid_api_key")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert nothing_stored(tmp_path)
    assert (await client.get("/v1/transcribe/x")).status == 401  # polling needs the key too
    for open_path in ("/healthz", "/readyz", "/metrics"):
        assert (await client.get(open_path)).status == 200


@pytest.mark.parametrize("style", ["Authorization", "x-token", "x-api-key"])
async def test_each_header_style_is_accepted(make_client: Any, style: str) -> None:
    client = await make_client()
    _, key = await create_key(client.app[STORE], "crm")
    headers = {"Authorization": f"Bearer {key}"} if style == "Authorization" else {style: key}
    response = await submit(client, headers)
    assert response.status == 202
    assert (
        await client.get(f"/v1/transcribe/{response.headers['x-requestid']}", headers=headers)
    ).status in (200, 204)


async def test_only_the_hash_is_stored_and_revoked_keys_stop_working(
    make_client: Any, tmp_path: Path
) -> None:
    client = await make_client()
    store = client.app[STORE]
    key_id, key = await create_key(store, "crm")
    _, other = await create_key(store, "ops")
    raw = (tmp_path / "data" / "speechsvc.sqlite3").read_bytes()
    wal = tmp_path / "data" / "speechsvc.sqlite3-wal"
    assert key.encode() not in raw + (wal.read_bytes() if wal.exists() else b"")
    with sqlite3.connect(tmp_path / "data" / "speechsvc.sqlite3") as db:
        stored = db.execute("SELECT key_sha256 FROM api_keys WHERE id = ?", (key_id,)).fetchone()[0]
    assert stored == hashlib.sha256(key.encode()).hexdigest()
    assert (await submit(client, {"x-token": key})).status == 202
    assert await store.revoke_key("crm") == 1
    await expect_error(await submit(client, {"x-token": key}), 401, "invalid_api_key")
    assert (await submit(client, {"x-token": other})).status == 202
    listed = {row["name"]: row for row in await store.list_keys()}
    assert listed["crm"]["revoked_at"] is not None and listed["ops"]["last_used_at"] is not None
    assert set(listed["crm"]) == {
        "id",
        "name",
        "scope",
        "created_at",
        "last_used_at",
        "revoked_at",
    }  # never the key


async def test_non_loopback_without_keys_refuses_everyone(make_client: Any) -> None:
    client = await make_client(host="0.0.0.0")  # the app's view: it would listen on every address
    await expect_error(await submit(client), 401, "invalid_api_key")


async def test_no_auth_turns_keys_off(make_client: Any) -> None:
    client = await make_client(no_auth=True)
    await create_key(client.app[STORE], "crm")
    assert (await submit(client)).status == 202


async def test_429_per_key_with_honest_retry_after(make_client: Any) -> None:
    client = await make_client(rate_limit_rpm=2)
    _, first = await create_key(client.app[STORE], "a")
    _, second = await create_key(client.app[STORE], "b")
    for _ in range(2):
        assert (await submit(client, {"x-api-key": first})).status == 202
    response = await submit(client, {"x-api-key": first})
    await expect_error(response, 429, "rate_limit_exceeded")
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert (await submit(client, {"x-api-key": second})).status == 202  # limits are per key
    # polls have their own budget (10 x the main one by default): the exhausted key can still poll
    assert (await client.get("/v1/transcribe/x", headers={"x-api-key": first})).status == 404


async def test_every_request_counts_polls_in_their_own_budget(make_client: Any) -> None:
    client = await make_client(rate_limit_rpm=2, poll_rate_limit_rpm=3)
    _, key = await create_key(client.app[STORE], "a")
    headers = {"x-api-key": key}
    statuses = [(await client.get("/v1/transcribe/x", headers=headers)).status for _ in range(4)]
    assert statuses == [404, 404, 404, 429]  # GET polls: 3 a minute
    assert (await client.head("/v1/transcribe/x", headers=headers)).status == 429
    assert (await client.delete("/v1/transcribe/x", headers=headers)).status == 404  # DELETE: main budget
    assert (await client.get("/v1/models", headers=headers)).status == 429  # every GET is a poll here
    assert (await submit(client, headers)).status == 202
    await expect_error(await submit(client, headers), 429, "rate_limit_exceeded")  # DELETE + POST = 2


async def test_rate_limiter_window_slides(tmp_path: Path) -> None:
    now = [0.0]
    async with open_url(f"sqlite:///{tmp_path / 'rate.db'}", tmp_path) as store:
        limiter = RateLimiter(store, 2, clock=lambda: now[0])
        await limiter.check("k")
        now[0] = 10.0
        await limiter.check("k")
        now[0] = 20.0
        with pytest.raises(RateLimited) as info:
            await limiter.check("k")
        assert info.value.retry_after_s == 40  # the first request leaves the window at t=60
        now[0] = 60.5
        await limiter.check("k")


async def test_503_queue_full_before_the_body_is_stored(make_client: Any, tmp_path: Path) -> None:
    client = await make_client(delay_s=0.2, max_queue=1)
    accepted: list[str] = []
    for _ in range(8):  # the slot and the job decoded ahead take the first ones; one more waits; then 503
        response = await submit(client)
        if response.status != 202:
            break
        accepted.append(response.headers["x-requestid"])
    await expect_error(response, 503, "queue_full")
    assert 3 <= len(accepted) <= 4  # 1 running + 1 decoded ahead + 1 queued (+1 if one finished meanwhile)
    assert int(response.headers["Retry-After"]) > 0
    audio = {p.name for p in (tmp_path / "data" / "audio").iterdir()}
    assert audio <= set(accepted)  # nothing of the refused body was stored
    assert not list((tmp_path / "data" / "spool").glob("*.upload"))  # no body spooled for it either
