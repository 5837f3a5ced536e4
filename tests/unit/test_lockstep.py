"""The LockstepBatcher with a stand-in CTranslate2 model: the channels' calls batched across jobs in
lockstep, only like calls together, jobs taking turns, one bad window failing only its own job, cancel and
close."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from speechsvc.asr import lockstep, lockstep_channels
from speechsvc.asr.lockstep import Encoded, LockstepBatcher

TIMEOUT_S = 10


class FakeWhisper:
    """Records every batch as (kind, [item markers]); a prompt holding 666 cannot be decoded."""

    device = "cpu"

    def __init__(self) -> None:
        self.batches: list[tuple[str, list[Any]]] = []
        self.release = threading.Event()
        self.release.set()

    def encode(self, features: Any, to_cpu: bool = False) -> Any:
        assert self.release.wait(TIMEOUT_S)
        array = np.array(features)
        self.batches.append(("encode", [float(item[0, 0]) for item in array]))
        return array * 2

    def generate(self, encoded: Any, prompts: list[list[int]], **kwargs: Any) -> list[Any]:
        assert self.release.wait(TIMEOUT_S)
        if any(666 in prompt for prompt in prompts):
            raise RuntimeError("this window cannot be decoded")
        self.batches.append(("generate", [prompt[-1] for prompt in prompts]))
        return [("result", prompt[-1], kwargs.get("beam_size")) for prompt in prompts]

    def align(
        self, encoded: Any, start: list[int], texts: list[list[int]], frames: list[int], **_: Any
    ) -> list[Any]:
        self.batches.append(("align", [text[0] for text in texts]))
        return [("aligned", text[0], count) for text, count in zip(texts, frames, strict=True)]


@pytest.fixture
def fake() -> FakeWhisper:
    return FakeWhisper()


def in_threads(*calls: Callable[[], Any]) -> list[Any]:
    results: list[Any] = [None] * len(calls)

    def run(number: int) -> None:
        try:
            results[number] = calls[number]()
        except Exception as exc:
            results[number] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT_S)
    return results


def generate(batcher: LockstepBatcher, job: str, token: int, beam: int = 5) -> Any:
    return batcher.call(
        f"{job}/0",
        job,
        "generate",
        ("beam", beam),
        Encoded(np.zeros(2, dtype=np.float32)),
        [1, token],
        {"beam_size": beam},
    )


def test_the_calls_of_every_active_channel_go_in_one_batch(
    fake: FakeWhisper, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lockstep, "GATHER_S", 1.0)
    batcher = LockstepBatcher(fake, batch_size=8, runners=1)
    for job in ("a", "b", "c"):
        batcher.join(job)

    def late(job: str, token: int) -> Callable[[], Any]:
        return lambda: (time.sleep(0.1), generate(batcher, job, token))[1]

    results = in_threads(lambda: generate(batcher, "a", 1), late("b", 2), late("c", 3))
    assert results == [("result", 1, 5), ("result", 2, 5), ("result", 3, 5)]
    # the runner waited for b and c (lockstep); b and c arrive in either order (a loaded machine)
    assert [(name, sorted(tokens)) for name, tokens in fake.batches] == [("generate", [1, 2, 3])]
    assert batcher.mixed_batches == 1
    batcher.close()


def test_a_channel_that_left_is_not_waited_for(fake: FakeWhisper, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lockstep, "GATHER_S", 5.0)
    batcher = LockstepBatcher(fake, batch_size=8, runners=1)
    batcher.join("a")
    batcher.join("b")
    batcher.leave("b")  # its job ended
    started = time.monotonic()
    assert generate(batcher, "a", 7) == ("result", 7, 5)
    assert time.monotonic() - started < 2.0
    batcher.close()


def test_only_like_calls_share_a_batch_and_jobs_take_turns(fake: FakeWhisper) -> None:
    fake.release.clear()  # hold the runner until everything is queued
    batcher = LockstepBatcher(fake, batch_size=2, runners=1)
    blocker = threading.Thread(target=lambda: generate(batcher, "z", 0))
    blocker.start()
    time.sleep(0.2)
    calls = [lambda job=job, token=token: generate(batcher, job, token) for job, token in
             (("a", 1), ("a", 2), ("a", 3), ("b", 4), ("b", 5))]  # fmt: skip
    calls.append(lambda: generate(batcher, "c", 6, beam=1))  # other decoder settings: a batch of its own
    threads = [threading.Thread(target=call) for call in calls]
    for thread in threads:
        thread.start()
        time.sleep(0.05)  # queued in this order (with room for a busy machine)
    fake.release.set()
    for thread in [blocker, *threads]:
        thread.join(TIMEOUT_S)
    batcher.close()
    kinds = [tokens for kind, tokens in fake.batches[1:]]
    assert kinds[0] == [1, 4]  # round-robin: one of a's, then one of b's
    assert [6] in kinds and all(len(batch) <= 2 for batch in kinds)
    assert sorted(t for batch in kinds for t in batch) == [1, 2, 3, 4, 5, 6]


def test_a_bad_window_fails_only_its_own_job(fake: FakeWhisper, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lockstep, "GATHER_S", 1.0)
    batcher = LockstepBatcher(fake, batch_size=8, runners=1)
    batcher.join("good")
    batcher.join("bad")
    good, bad = in_threads(lambda: generate(batcher, "good", 1), lambda: generate(batcher, "bad", 666))
    assert good == ("result", 1, 5)
    assert isinstance(bad, RuntimeError) and "cannot be decoded" in str(bad)
    assert fake.batches == [("generate", [1])]  # the batch failed, then each went alone
    batcher.close()


def test_encode_and_align_are_batched_per_item(fake: FakeWhisper, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lockstep, "GATHER_S", 1.0)
    batcher = LockstepBatcher(fake, batch_size=8, runners=1)
    batcher.join("a")
    batcher.join("b")

    def encode(job: str, value: float) -> Any:
        return batcher.call(f"{job}/0", job, "encode", (2, 2), np.full((2, 2), value, dtype=np.float32))

    first, second = in_threads(lambda: encode("a", 1.0), lambda: encode("b", 3.0))
    assert [(name, sorted(items)) for name, items in fake.batches] == [("encode", [1.0, 3.0])]  # either order
    assert float(first.array[0, 0]) == 2.0 and float(second.array[0, 0]) == 6.0  # each its own row

    def align(job: str, texts: list[list[int]]) -> Any:
        return batcher.call(f"{job}/0", job, "align", ((1,), 7), first, texts, 100, [1], 7)

    one, two = in_threads(lambda: align("a", [[10]]), lambda: align("b", [[20], [30]]))
    assert one == [("aligned", 10, 100)] and two == [("aligned", 20, 100), ("aligned", 30, 100)]
    name, texts = fake.batches[-1]
    assert name == "align" and sorted(texts) == [10, 20, 30]  # a's and b's texts in one batch, either order
    batcher.close()


def test_cancel_and_close_fail_the_waiting_calls(fake: FakeWhisper) -> None:
    fake.release.clear()
    batcher = LockstepBatcher(fake, batch_size=1, runners=1)
    results = []
    threads = [threading.Thread(target=lambda job=job: results.append(_outcome(lambda: generate(batcher, job, 1))))
               for job in ("running", "doomed", "closed")]  # fmt: skip
    for thread in threads:
        thread.start()
        time.sleep(0.1)
    batcher.cancel("doomed")
    time.sleep(0.1)
    assert results == ["the job stopped"]
    fake.release.set()
    batcher.close()
    for thread in threads:
        thread.join(TIMEOUT_S)
    assert sorted(results) == sorted(["the job stopped", "ok", "the lockstep batcher is closed"]) or sorted(
        results
    ) == sorted(["the job stopped", "ok", "ok"])
    with pytest.raises(RuntimeError, match="closed"):
        batcher.join("late")


def _outcome(call: Callable[[], Any]) -> str:
    try:
        call()
    except RuntimeError as exc:
        return str(exc)
    return "ok"


def test_windows_of_different_lengths_never_share_a_batch() -> None:
    """A live utterance is encoded in a shorter window than a file job's 30 s: their generate and align calls
    cannot be stacked into one batch (np.stack would fail, and the batch run again one by one)."""

    class Groups:
        def call(self, channel: str, job_key: str, kind: str, group: Any, *payload: Any) -> Any:
            return group

    model = lockstep_channels.ChannelModel(FakeWhisper(), Groups(), "job/0", "job", sot=9, preparing=None)  # type: ignore[arg-type]
    full, short = Encoded(np.zeros((1500, 4), np.float32)), Encoded(np.zeros((500, 4), np.float32))
    assert model.generate(full, [[9, 1]], beam_size=5) != model.generate(short, [[9, 1]], beam_size=5)
    assert model.generate(full, [[9, 1]], beam_size=5) == model.generate(full, [[9, 2]], beam_size=5)
    assert model.align(full, [9], [[1]], [10]) != model.align(short, [9], [[1]], [10])
