"""The gateway's request time limit: one sweeping timer per limit, a caller's shorter deadline
met on its own timer, cancellations that are not the limit's passed on untouched."""

from __future__ import annotations

import asyncio
import time

import pytest

from mnist_serving.deadlines import RequestLimit
from mnist_serving.errors import DeadlineExceeded


async def _answer(after_s: float, value: str = "done") -> str:
    await asyncio.sleep(after_s)
    return value


async def test_work_within_the_limit_gets_its_answer_and_leaves_nothing_behind() -> None:
    limit = RequestLimit(0.5)
    assert await limit.bound(_answer(0.01)) == "done"
    await asyncio.sleep(limit.tick_s * 2)  # the timer stops once nothing is running
    assert limit._timer is None and not limit._running and not limit._expired


async def test_work_past_the_limit_is_cancelled_within_a_tick() -> None:
    limit = RequestLimit(0.05)
    cancelled = asyncio.Event()

    async def slow() -> str:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "late"

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match=r"limit of 0\.05 s"):
        await limit.bound(slow())
    took = time.monotonic() - started
    assert cancelled.is_set()
    assert 0.05 <= took < 0.05 + limit.tick_s + 0.05


async def test_many_requests_share_one_timer_and_only_the_late_ones_fail() -> None:
    limit = RequestLimit(0.1)
    durations = [0.01 * (i % 5) for i in range(50)] + [1.0] * 10
    results = await asyncio.gather(
        *(limit.bound(_answer(d)) for d in durations), return_exceptions=True
    )
    assert results[:50] == ["done"] * 50
    assert all(isinstance(r, DeadlineExceeded) for r in results[50:])


async def test_a_shorter_caller_deadline_is_met_on_its_own_timer() -> None:
    limit = RequestLimit(10.0)  # ticks every 0.5 s: far too coarse for the caller's 20 ms
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="caller's deadline"):
        await limit.bound(_answer(5), caller_deadline_s=0.02)
    assert time.monotonic() - started < 0.2
    assert await limit.bound(_answer(0.01), caller_deadline_s=20.0) == "done"  # longer: limit's


async def test_a_cancel_from_elsewhere_is_not_reported_as_the_limit() -> None:
    limit = RequestLimit(5.0)
    task = asyncio.ensure_future(limit.bound(_answer(5)))
    await asyncio.sleep(0.01)
    task.cancel()  # the caller went away
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not limit._running


async def test_work_that_swallows_the_limits_cancel_leaves_its_task_clean() -> None:
    limit = RequestLimit(0.02)

    async def stubborn() -> str:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            return "finished anyway"
        return "late"

    async def request() -> tuple[str, int]:
        answer = await limit.bound(stubborn())
        task = asyncio.current_task()
        assert task is not None
        return answer, task.cancelling()

    assert await request() == ("finished anyway", 0)
    assert not limit._expired
