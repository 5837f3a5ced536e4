"""Fuzz: a few hundred mutated real recordings. Each gets a 4xx at submit or a job that ends Completed
or Failed with a clear x-error: never a 5xx, never a stuck job, and the server goes on serving."""

import collections
import io
import random
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp.test_utils import TestClient

from speechsvc.app import create_app
from tests.conftest import FIXTURES, corpus, fake_registry, make_config
from tests.integration.helpers import poll_until

ClientFactory = Callable[..., Awaitable[TestClient]]
CASES = 300
SEED = 20261121
SOURCES = [
    ("jfk.mp3", "audio/mpeg"), ("jfk.ogg", "audio/ogg"), ("jfk.m4a", "audio/mp4"), ("jfk.webm", "audio/webm"),
    ("jfk.au", "audio/basic"), ("jfk_headerless.ulaw", "audio/basic"), ("stereo_mulaw_8k.wav", "audio/wav"),
    ("two_streams.mp4", "video/mp4"), ("two_streams.mkv", "video/x-matroska"),
]  # fmt: skip
ALLOWED_AT_SUBMIT = {200, 202, 400, 413, 415, 422}


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    buf = bytearray(data)
    kind = rng.choice(["flip", "truncate", "zero", "insert", "duplicate", "head", "blocks", "stack"])
    if kind in ("flip", "stack"):
        for _ in range(rng.randint(1, 200 if kind == "stack" else 20)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    if kind == "truncate":
        del buf[rng.randrange(1, len(buf)) :]
    elif kind == "zero":
        start = rng.randrange(len(buf))
        buf[start : start + rng.randint(1, 4096)] = bytes(min(4096, len(buf) - start))
    elif kind == "insert":
        at = rng.randrange(len(buf))
        buf[at:at] = rng.randbytes(rng.randint(1, 2048))
    elif kind == "duplicate":
        start = rng.randrange(len(buf))
        buf[start:start] = buf[start : start + rng.randint(1, 8192)]
    elif kind == "head":
        buf[8 : 8 + 56] = rng.randbytes(56)  # keep the magic, break the header behind it
    elif kind == "blocks":
        blocks = [buf[i : i + 4096] for i in range(0, len(buf), 4096)]
        rng.shuffle(blocks)
        buf = bytearray(b"".join(blocks))
    return kind, bytes(buf)


async def test_fuzz_mutated_recordings(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    config = make_config(tmp_path, max_duration_s=120.0, decode_timeout_s=30.0)
    client = await aiohttp_client(create_app(config, registry=fake_registry(tmp_path)))
    rng = random.Random(SEED)
    originals = {name: (FIXTURES / name).read_bytes() for name, _ in SOURCES}
    originals["stereo_diarization.wav"] = corpus("stereo_diarization.wav").read_bytes()
    types = dict(SOURCES) | {"stereo_diarization.wav": "audio/wav"}
    outcomes: collections.Counter[str] = collections.Counter()
    for case in range(CASES):
        name = rng.choice(sorted(originals))
        kind, body = mutate(originals[name], rng)
        content_type = types[name] if rng.random() < 0.8 else "application/octet-stream"
        response = await client.post("/v1/transcribe", data=io.BytesIO(body), params={"wait": "30"},
                                     headers={"Content-Type": content_type})  # fmt: skip
        where = f"case {case}: {kind} of {name} as {content_type}"
        assert response.status in ALLOWED_AT_SUBMIT, (where, response.status, await response.text())
        if response.status >= 400:
            error = (await response.json())["error"]
            assert error["message"] and error["code"], where
            outcomes[f"{response.status} {error['code']}"] += 1
            continue
        final = response
        if response.status == 202:
            final = await poll_until(client, response.headers["x-requestid"], {"Completed", "Failed"}, 60)
        status = final.headers["x-status"]
        assert status in ("Completed", "Failed"), where
        if status == "Failed":
            assert final.headers["x-error"].strip(), where
        outcomes[f"job {status}"] += 1
    print(f"\nfuzz: {CASES} mutated recordings (seed {SEED}): {dict(sorted(outcomes.items()))}")
    assert sum(outcomes.values()) == CASES
    assert (await client.get("/healthz")).status == 200
    assert not any((tmp_path / "data" / "spool").iterdir())  # no leftovers from any path
