"""service.worker.stop_task: a helper task stopped without swallowing the waiting task's own cancellation
(a worker cancelled at shutdown while it stopped its job's progress ticker went on claiming jobs, and the
app's cleanup waited for it forever)."""

from __future__ import annotations

import asyncio

import pytest

from speechsvc.service.worker import stop_task


async def _slow_to_stop() -> None:
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        await asyncio.sleep(0.2)  # a last progress write, say
        raise


async def test_the_helper_is_stopped_and_the_caller_goes_on() -> None:
    helper = asyncio.create_task(_slow_to_stop())
    await asyncio.sleep(0)
    await stop_task(helper)
    assert helper.cancelled()


async def test_a_cancellation_that_comes_meanwhile_is_not_swallowed() -> None:
    went_on = []

    async def worker() -> None:
        helper = asyncio.create_task(_slow_to_stop())
        await asyncio.sleep(0)
        await stop_task(helper)
        went_on.append(True)  # with `suppress(CancelledError): await helper`, this ran

    task = asyncio.create_task(worker())
    await asyncio.sleep(0.05)  # inside stop_task, the helper still stopping
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert went_on == []
