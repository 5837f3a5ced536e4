"""Two API nodes in one test: two real apps (the fake transcriber, separate data dirs) on one real
PostgreSQL. What one node stores, the other serves: jobs, keys, rate windows, the queue limit, the
pieces of one upload received by different nodes."""

import asyncio
import hashlib
import io
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from speechsvc.access.auth import create_key
from speechsvc.api.keys import STORE
from speechsvc.app import create_app
from tests.conftest import corpus, fake_registry, make_config
from tests.test_hardening.test_rejections import expect_error

STEREO = corpus("stereo_diarization.wav").read_bytes()


async def nodes(
    aiohttp_client: Any, tmp_path: Path, url: str, **config: Any
) -> tuple[TestClient, TestClient]:
    clients = []
    for name in ("a", "b"):
        settings = make_config(tmp_path / name, database=url, **config)
        clients.append(await aiohttp_client(create_app(settings, registry=fake_registry(tmp_path / name))))
    return clients[0], clients[1]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def post(client: TestClient, key: str, **params: str) -> Any:
    return await client.post("/v1/transcribe", data=io.BytesIO(STEREO), params=params,
                             headers={"Content-Type": "audio/wav", **bearer(key)})  # fmt: skip


async def test_any_node_answers_for_any_job(aiohttp_client: Any, tmp_path: Path, postgres_url: str) -> None:
    a, b = await nodes(aiohttp_client, tmp_path, postgres_url)
    _, key = await create_key(a.app[STORE], "crm")  # a key made on one node works on the other
    job = (await (await post(a, key)).json())["request_id"]
    for _ in range(200):
        answer = await b.get(f"/v1/transcribe/{job}", headers=bearer(key))
        if answer.headers["x-status"] == "Completed":
            break
        await asyncio.sleep(0.05)
    result = await (
        await b.get(f"/v1/transcribe/{job}", params={"format": "json"}, headers=bearer(key))
    ).json()
    assert result["status"] == "Completed" and len(result["channels"]) == 2
    waited = await post(b, key, wait="30", format="txt")  # wait= on one node, the job run by either
    assert waited.status == 200 and "word0." in await waited.text()


async def test_rate_limit_and_queue_limit_hold_across_nodes(
    aiohttp_client: Any, tmp_path: Path, postgres_url: str
) -> None:
    a, b = await nodes(aiohttp_client, tmp_path, postgres_url, rate_limit_rpm=3)
    _, key = await create_key(a.app[STORE], "crm")
    statuses = [(await post(node, key)).status for node in (a, b, a, b)]
    assert statuses == [202, 202, 202, 429]  # three in the minute, counted over both nodes
    again = await post(a, key)
    await expect_error(again, 429, "rate_limit_exceeded")


async def test_upload_pieces_on_different_nodes(
    aiohttp_client: Any, tmp_path: Path, postgres_url: str
) -> None:
    a, b = await nodes(aiohttp_client, tmp_path, postgres_url)
    created = await a.post(
        "/v1/audio/uploads", json={"file_name": "c.wav", "mime_type": "audio/wav", "size_bytes": len(STEREO)}
    )
    upload = await created.json()
    path = upload["upload_url"].replace(str(a.make_url("")), "")
    half = len(STEREO) // 2
    first = await a.put(
        path, data=STEREO[:half], headers={"Content-Range": f"bytes 0-{half - 1}/{len(STEREO)}"}
    )
    assert first.status == 200
    rest = f"bytes {half}-{len(STEREO) - 1}/{len(STEREO)}"
    second = await b.put(path, data=STEREO[half:], headers={"Content-Range": rest})
    assert (await second.json())["received_bytes"] == len(STEREO)
    done = await (await b.post(f"/v1/audio/uploads/{upload['id']}/complete")).json()
    assert done["sha256"] == hashlib.sha256(STEREO).hexdigest() and done["status"] == "completed"
    job = await (await a.post("/v1/audio/jobs", json={"upload_id": upload["id"]})).json()
    for _ in range(200):
        view = await (await b.get(f"/v1/audio/jobs/{job['id']}")).json()
        if view["status"] == "completed":
            break
        await asyncio.sleep(0.05)
    assert view["status"] == "completed"
    nothing_local = [p for p in (tmp_path / "a" / "data" / "uploads").glob("*") if p.is_file()]
    assert nothing_local == []  # the bytes live in the database, not on a node's disk


async def test_complete_on_one_node_while_another_receives_a_put(
    aiohttp_client: Any, tmp_path: Path, postgres_url: str, monkeypatch: Any
) -> None:
    """Issue 25, finding 1: node a completes (sha256 of the first file) while node b receives a different
    file of the same size. Before, `complete` said 200 with the first file's hash over the second file's
    bytes; now either the PUT or the complete is refused, and a recorded hash is that of the bytes stored."""
    import threading

    from speechsvc.audio import isolate

    probing, go = threading.Event(), threading.Event()
    real_probe = isolate.probe

    def slow_probe(*args: Any, **kwargs: Any) -> Any:
        probing.set()
        go.wait(10)
        return real_probe(*args, **kwargs)

    monkeypatch.setattr(isolate, "probe", slow_probe)
    a, b = await nodes(aiohttp_client, tmp_path, postgres_url)
    other = STEREO[:-2000] + bytes(2000)  # the same size, other audio
    created = await (await a.post("/v1/audio/uploads", json={
        "file_name": "c.wav", "mime_type": "audio/wav", "size_bytes": len(STEREO)})).json()  # fmt: skip
    path = created["upload_url"].replace(str(a.make_url("")), "")
    assert (await a.put(path, data=STEREO)).status == 200
    completing = asyncio.create_task(
        a.post(
            f"/v1/audio/uploads/{created['id']}/complete", json={"sha256": hashlib.sha256(STEREO).hexdigest()}
        )
    )
    assert await asyncio.to_thread(probing.wait, 10)
    replaced = await b.put(path, data=other)  # while node a checks the first file
    go.set()
    done = await completing
    view = await (await a.get(f"/v1/audio/uploads/{created['id']}")).json()
    assert replaced.status == 200 and done.status == 409
    assert (await done.json())["error"]["code"] == "upload_busy"
    assert view["status"] == "uploading" and view["sha256"] is None
    finished = await (await b.post(f"/v1/audio/uploads/{created['id']}/complete")).json()
    assert finished["sha256"] == hashlib.sha256(other).hexdigest()  # the hash of what is stored
