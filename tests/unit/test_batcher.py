"""The cross-request ChunkBatcher with a stand-in decoder: batching, fairness, failures, cancel, close."""

from __future__ import annotations

import threading
from collections.abc import Hashable
from concurrent.futures import wait
from typing import Any

import numpy as np
import pytest

from speechsvc.asr.batcher import ChunkBatcher, PreparedChannel

TIMEOUT_S = 10


def channel(chunks: int, group: Hashable = "en", bad: int | None = None) -> PreparedChannel:
    """A prepared channel whose chunk i is the number i (and a chunk marked bad fails to decode)."""
    return PreparedChannel(
        duration_s=30.0 * chunks,
        speech_s=30.0 * chunks,
        clips=[],
        metadata=[{"offset": 30.0 * i, "duration": 30.0, "bad": i == bad} for i in range(chunks)],
        features=[np.full((1, 1), i, dtype=np.float32) for i in range(chunks)],
        language="en",
        language_probability=1.0,
        tokenizer=None,
        options=None,
        group=group,
    )


class Recorder:
    """A decoder that records each batch as (job, chunk index) pairs; the first batch can be held."""

    def __init__(self, hold_first: bool = False) -> None:
        self.batches: list[list[tuple[str, int]]] = []
        self.release = threading.Event()
        self.started = threading.Event()
        if not hold_first:
            self.release.set()

    def __call__(self, chunks: list[Any]) -> list[list[dict[str, Any]]]:
        self.started.set()
        assert self.release.wait(TIMEOUT_S)
        if any(c.channel.metadata[c.index]["bad"] for c in chunks):
            raise RuntimeError("this chunk cannot be decoded")
        self.batches.append([(c.job_key, c.index) for c in chunks])
        return [[{"job": c.job_key, "index": c.index}] for c in chunks]


def test_chunks_of_several_jobs_go_in_one_batch_round_robin() -> None:
    decode = Recorder(hold_first=True)
    batcher = ChunkBatcher(decode, batch_size=4, runners=1)
    try:
        first = batcher.submit("A", channel(6))
        assert decode.started.wait(TIMEOUT_S)  # the runner holds A's first four chunks
        later = batcher.submit("B", channel(2)) + batcher.submit("C", channel(1))
        decode.release.set()
        done, _ = wait(first + later, timeout=TIMEOUT_S)
        assert len(done) == 9
    finally:
        batcher.close()
    assert decode.batches[0] == [("A", 0), ("A", 1), ("A", 2), ("A", 3)]
    # one chunk per job per pass, not all of A's before B's
    assert decode.batches[1] == [("A", 4), ("B", 0), ("C", 0), ("A", 5)]
    assert decode.batches[2] == [("B", 1)]
    assert (batcher.batches, batcher.chunks, batcher.mixed_batches) == (3, 9, 1)
    assert [f.result()[0]["index"] for f in first] == [0, 1, 2, 3, 4, 5]  # each result to its own chunk


def test_a_long_job_does_not_hold_back_a_short_one() -> None:
    decode = Recorder(hold_first=True)
    batcher = ChunkBatcher(decode, batch_size=2, runners=1)
    try:
        long = batcher.submit("long", channel(20))
        assert decode.started.wait(TIMEOUT_S)
        short = batcher.submit("short", channel(1))
        decode.release.set()
        wait(long + short, timeout=TIMEOUT_S)
    finally:
        batcher.close()
    # the short job's only chunk is in the batch right after the one that was running when it came
    assert ("short", 0) in decode.batches[1]


def test_only_chunks_of_the_same_group_share_a_batch() -> None:
    decode = Recorder(hold_first=True)
    batcher = ChunkBatcher(decode, batch_size=8, runners=1)
    try:
        futures = batcher.submit("hold", channel(1))
        assert decode.started.wait(TIMEOUT_S)
        futures += batcher.submit("en", channel(2, group="en"))
        futures += batcher.submit("de", channel(2, group="de"))
        futures += batcher.submit("en2", channel(1, group="en"))
        decode.release.set()
        wait(futures, timeout=TIMEOUT_S)
    finally:
        batcher.close()
    assert decode.batches[1:] == [[("en", 0), ("en2", 0), ("en", 1)], [("de", 0), ("de", 1)]]


def test_a_bad_chunk_fails_only_its_own_job() -> None:
    decode = Recorder(hold_first=True)
    batcher = ChunkBatcher(decode, batch_size=8, runners=1)
    try:
        hold = batcher.submit("hold", channel(1))
        assert decode.started.wait(TIMEOUT_S)
        good = batcher.submit("good", channel(2))
        bad = batcher.submit("bad", channel(2, bad=1))
        decode.release.set()
        wait(hold + good + bad, timeout=TIMEOUT_S)
    finally:
        batcher.close()
    assert all(f.exception() is None for f in good)
    assert bad[0].exception() is None
    with pytest.raises(RuntimeError, match="cannot be decoded"):
        bad[1].result()
    # the mixed batch failed, then each of its chunks was decoded on its own
    assert [("good", 0)] in decode.batches and [("bad", 0)] in decode.batches


def test_cancel_drops_a_jobs_queued_chunks_and_close_the_rest() -> None:
    decode = Recorder(hold_first=True)
    batcher = ChunkBatcher(decode, batch_size=1, runners=1)
    running = batcher.submit("A", channel(1))
    assert decode.started.wait(TIMEOUT_S)
    canceled = batcher.submit("B", channel(3))
    queued = batcher.submit("C", channel(2))
    batcher.cancel("B")
    done, _ = wait(canceled, timeout=TIMEOUT_S)  # wait() wakes for cancelled futures
    assert len(done) == 3 and all(f.cancelled() for f in canceled)
    closer = threading.Thread(target=batcher.close)
    closer.start()
    done, _ = wait(queued, timeout=TIMEOUT_S)
    assert len(done) == 2 and all(f.cancelled() for f in queued)
    decode.release.set()  # the batch being decoded finishes; close() waits for it
    closer.join(TIMEOUT_S)
    assert not closer.is_alive()
    assert running[0].result(timeout=TIMEOUT_S) == [{"job": "A", "index": 0}]
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit("D", channel(1))


def test_not_started_until_start() -> None:
    decode = Recorder()
    batcher = ChunkBatcher(decode, batch_size=4, runners=1, start=False)
    futures = batcher.submit("A", channel(1)) + batcher.submit("B", channel(1))
    assert not any(f.done() for f in futures)
    batcher.start()
    wait(futures, timeout=TIMEOUT_S)
    batcher.close()
    assert decode.batches == [[("A", 0), ("B", 0)]]
