"""Fuzz the request parsers (query strings, multipart form fields, JSON bodies) with random and adversarial
values: every answer is below 500, and the event loop never stalls for 100 ms or more while they are
parsed (the security review found a 7.7 s stall in the channel_layout check, and 500s from '[' * 100000
and from "²".isdigit())."""

import io
import json
import random
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from tests.conftest import corpus
from tests.test_hardening.test_security import LoopLag

SEED = 20261129
QUERY_CASES = 150
FORM_CASES = 60
JSON_CASES = 150
MAX_STALL_S = 0.1
STEREO = corpus("stereo_diarization.wav").read_bytes()

PARAMS = ["channel_layout", "channel_labels", "language", "model", "callback", "userdata", "format", "task",
          "word_timestamps", "vad", "beam_size", "prompt", "hotwords", "wait", "temperature"]  # fmt: skip
FORM_FIELDS = ["model", "language", "prompt", "response_format", "temperature", "timestamp_granularities[]",
               "channel_layout", "channel_labels", "callback_url", "timestamp_granularities"]  # fmt: skip
ADVERSARIAL = [
    "",
    " ",
    "0",
    "-1",
    "1e308",
    "1e999",
    "nan",
    "inf",
    "-inf",
    "9" * 5000,
    "²",
    "٣",
    "१",
    "0x10",
    "1_000",
    "true",
    "FALSE",
    "null",
    "None",
    "[]",
    "{}",
    "\x00",
    "\r\n",
    "\u2028",
    "\u202e",
    "%00",
    "..",
    "../../etc",
    "0." * 300,
    "0,0",
    "0,0,0",
    "1.0,0.1",
    "a,b",
    "," * 5000,
    "srt,max_lines:²",
    "srt,max_lines:0",
    "vtt,line_char_limit:99999",
    "json,,",
    "xml,max_lines",
    "http://127。0。0。1/",
    "http://[::1]/",
    "ftp://x/",
    "http://" + "a" * 3000,
    "en",
    "auto",
    "xx",
    "tiny.en",
    "../models",
    "whisper-1",
    "translate",
    "🙂" * 100,
    "x" * 70000,
]


def value(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.6:
        return rng.choice(ADVERSARIAL)
    if kind < 0.8:
        return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randint(0, 40)))
    return ",".join(
        str(rng.randint(-2, 40)) + rng.choice(["", ".", ".1", ":", ":3"]) for _ in range(rng.randint(1, 50))
    )


def json_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -1, 1, 2**63, -(2**70), 10**400 if rng.random() < 0.1 else 7])
    if kind == 2:
        return rng.choice([0.5, -0.0, 1e308, float("inf"), float("nan")])
    if kind in (3, 4, 5):
        return value(rng)
    if kind in (6, 7):
        return [json_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(["size_bytes", "file_name", "mime_type", "upload_id", "sha256", "channel_layout", "x"]):
            json_value(rng, depth + 1) for _ in range(rng.randint(0, 5))}  # fmt: skip


async def expect_no_5xx(response: aiohttp.ClientResponse, what: object) -> None:
    assert response.status < 500, (response.status, what, await response.text())
    if response.status >= 400:
        assert "error" in await response.json(), what  # the JSON error envelope, every time


async def test_query_form_and_json_parsers_survive_fuzzing(make_client: Any) -> None:
    client: TestClient = await make_client(max_upload_bytes=1024**2)
    rng = random.Random(SEED)
    done = await client.post("/v1/transcribe", data=io.BytesIO(STEREO), params={"wait": "30"},
                             headers={"Content-Type": "audio/wav"})  # fmt: skip
    finished = done.headers["x-requestid"]
    async with LoopLag() as lag:
        for _ in range(QUERY_CASES):
            params = {rng.choice(PARAMS): value(rng) for _ in range(rng.randint(1, 4))}
            params = {k: v[:7000] for k, v in params.items()}  # below aiohttp's 8 KB request-line limit
            body = STEREO if rng.random() < 0.2 else rng.randbytes(rng.randint(0, 64))
            response = await client.post(
                "/v1/transcribe", data=io.BytesIO(body), params=params, headers={"Content-Type": "audio/wav"}
            )
            await expect_no_5xx(response, params)
            poll = await client.get(f"/v1/transcribe/{finished}", params={"format": value(rng)[:7000]})
            await expect_no_5xx(poll, "poll")
        for _ in range(FORM_CASES):
            data = aiohttp.FormData()
            fields = {rng.choice(FORM_FIELDS): value(rng)[:60000] for _ in range(rng.randint(1, 4))}
            for name, text in fields.items():
                data.add_field(name, text)
            data.add_field("file", io.BytesIO(rng.randbytes(32)), filename="a.wav", content_type="audio/wav")
            await expect_no_5xx(await client.post("/v1/audio/transcriptions", data=data), fields)
        for case in range(JSON_CASES):
            document = json_value(rng)
            text = json.dumps(document) if case % 10 else "[" * rng.randint(1, 200000)
            for path in ("/v1/audio/uploads", "/v1/audio/jobs", f"/v1/audio/uploads/upl_{case}/complete"):
                response = await client.post(
                    path, data=text.encode(), headers={"Content-Type": "application/json"}
                )
                await expect_no_5xx(response, text[:200])
    assert lag.worst_s < MAX_STALL_S, f"the event loop stalled for {lag.worst_s:.3f} s"
    assert (await client.get("/healthz")).status == 200
