"""Helpers for tests that drive the real app through pytest-aiohttp."""

from __future__ import annotations

import asyncio
import io
import re
import time
from pathlib import Path
from typing import Any

import jiwer
from aiohttp.test_utils import TestClient

CONTENT_TYPES = {
    ".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg", ".ogg": "audio/ogg",
    ".m4a": "audio/mp4", ".webm": "audio/webm", ".au": "audio/basic", ".ulaw": "audio/basic",
    ".mp4": "video/mp4", ".mkv": "video/x-matroska",
}  # fmt: skip


def normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).strip()


def wer(reference: str, hypothesis: str) -> float:
    return float(jiwer.wer(normalise(reference), normalise(hypothesis)))


async def post_audio(client: TestClient, path: Path, content_type: str | None = None, **params: Any) -> Any:
    """POST the file's bytes as the body, the raw-binary way."""
    headers = {"Content-Type": content_type or CONTENT_TYPES[path.suffix]}
    return await client.post("/v1/transcribe", data=io.BytesIO(path.read_bytes()), headers=headers,
                             params={k: str(v) for k, v in params.items()})  # fmt: skip


async def transcribe_json(
    client: TestClient, path: Path, content_type: str | None = None, **params: Any
) -> Any:
    """Submit with wait= and return the canonical JSON result."""
    response = await post_audio(client, path, content_type, format="json", wait=120, **params)
    assert response.status == 200, await response.text()
    assert response.headers["x-status"] == "Completed"
    return await response.json()


async def poll_until(client: TestClient, request_id: str, statuses: set[str], timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = await client.get(f"/v1/transcribe/{request_id}")
        if response.headers["x-status"] in statuses:
            return response
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {request_id} never reached {statuses}")
