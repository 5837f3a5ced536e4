"""The one loop that writes incoming bytes (speechsvc.service.spool.write_capped): request bodies, form
files and upload parts go through it."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator

import pytest

from speechsvc.errors import PayloadTooLarge
from speechsvc.operations.disk import DiskCheck
from speechsvc.service.spool import write_capped


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def test_writes_every_chunk_and_feeds_the_digest() -> None:
    out, digest = io.BytesIO(), hashlib.sha256()
    size = asyncio.run(
        write_capped(chunks(b"abc", b"", b"de"), out, DiskCheck(None), 5, PayloadTooLarge, digest)
    )
    assert (size, out.getvalue(), digest.hexdigest()) == (5, b"abcde", hashlib.sha256(b"abcde").hexdigest())


def test_stops_at_the_first_chunk_past_the_limit() -> None:
    out = io.BytesIO()
    with pytest.raises(PayloadTooLarge, match="the file"):
        asyncio.run(write_capped(chunks(b"abc", b"def", b"never read"), out, DiskCheck(None), 5,
                                 lambda: PayloadTooLarge("the file is too large", param="file")))  # fmt: skip
    assert out.getvalue() == b"abc"  # nothing of the chunk that crossed the limit
