"""Admission by waiting time (:mod:`mnist_serving.core.admission`), on a clock the tests move."""

from __future__ import annotations

import asyncio
import time

import pytest

from mnist_serving.core.admission import DOOR_WAITS, FLOOR, INTERVAL_S, Admission
from mnist_serving.errors import QueueDelayed, TooManyInFlight

TARGET = 0.02


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _admission(cap: int = 0, target: float | None = TARGET) -> tuple[Admission, Clock]:
    clock = Clock()
    return Admission(cap, target, clock=clock), clock


async def _complete(admission: Admission, clock: Clock, n: int, waited: float) -> None:
    """``n`` requests admitted and answered within the current interval, each having waited
    ``waited`` inside the gateway."""
    for _ in range(n):
        await admission.enter()
        admission.observe(waited, clock.now)
        admission.leave()


async def _stand(admission: Admission, clock: Clock, completions: int = 50) -> None:
    """One whole interval in which even the shortest wait was over the target, with
    ``completions`` + 1 requests answered."""
    await admission.enter()  # opens an interval
    admission.leave()
    await _complete(admission, clock, completions, TARGET * 3)
    clock.now += INTERVAL_S
    admission.observe(TARGET * 3, clock.now)  # closes it


async def _at_the_door(admission: Admission, clock: Clock) -> asyncio.Future[None]:
    """Shedding at the floor with every slot taken: a new arrival, left waiting at the door."""
    await _stand(admission, clock, completions=1)
    for _ in range(FLOOR):
        await admission.enter()
    waiter = asyncio.ensure_future(admission.enter())
    await asyncio.sleep(0)
    return waiter


async def test_a_burst_shorter_than_the_interval_is_left_alone() -> None:
    admission, clock = _admission()
    await _complete(admission, clock, 1, 0.0)
    clock.now += INTERVAL_S  # the first interval closes calm
    await _complete(admission, clock, 30, TARGET * 5)
    await _complete(admission, clock, 1, TARGET / 2)  # one short wait: no standing queue
    clock.now += INTERVAL_S
    await _complete(admission, clock, 1, TARGET * 5)
    assert not admission.shedding and admission.state().standing_intervals == 0


async def test_a_standing_queue_limits_concurrency_by_littles_law() -> None:
    admission, clock = _admission()
    await _stand(admission, clock, completions=50)
    # 51 completions in 0.1 s is 510/s; within a 20 ms target: 11 (rounded up) in flight.
    state = admission.state()
    assert admission.shedding and state.limit == 11 and state.standing_intervals == 1
    for _ in range(11):
        await admission.enter()
    waiter = asyncio.ensure_future(admission.enter())
    await asyncio.sleep(0)
    assert not waiter.done() and admission.state().waiting == 1
    admission.leave()
    await asyncio.sleep(0)
    assert waiter.done() and waiter.exception() is None and admission.in_flight == 11


async def test_the_limit_never_drops_below_the_floor() -> None:
    admission, clock = _admission()
    await _stand(admission, clock, completions=1)
    assert admission.state().limit == FLOOR


async def test_the_door_is_served_newest_first_while_shedding() -> None:
    admission, clock = _admission()
    older = await _at_the_door(admission, clock)
    clock.now += 0.001
    newer = asyncio.ensure_future(admission.enter())
    await asyncio.sleep(0)
    admission.leave()
    await asyncio.sleep(0)
    assert newer.done() and not older.done()
    admission.leave()
    await asyncio.sleep(0)
    assert older.done()


async def test_a_request_waiting_too_long_at_the_door_is_refused() -> None:
    admission, clock = _admission()
    waiter = await _at_the_door(admission, clock)
    clock.now += TARGET * DOOR_WAITS - 0.001
    admission.observe(0.0, clock.now)
    await asyncio.sleep(0)
    assert not waiter.done()
    clock.now += 0.002
    admission.observe(0.0, clock.now)
    await asyncio.sleep(0)
    with pytest.raises(QueueDelayed, match="20 ms queue target"):
        waiter.result()
    assert admission.state().refused == 1 and admission.in_flight == FLOOR


async def test_the_sweeper_acts_for_waiters_when_no_request_comes_or_goes() -> None:
    admission = Admission(0, 0.001, interval_s=0.01)  # the real clock
    await admission.enter()  # opens an interval
    admission.observe(0.5, time.perf_counter())
    await asyncio.sleep(0.012)
    admission.observe(0.5, time.perf_counter())  # closes it: a standing queue
    limit = admission.state().limit
    assert limit == FLOOR
    for _ in range(limit - 1):
        await admission.enter()
    # Nobody leaves and no wait is observed: only the sweeper closes the next interval, finds
    # no standing queue, raises the limit, and lets the waiter in.
    await asyncio.wait_for(admission.enter(), 2.0)
    assert admission.in_flight == limit + 1


async def test_a_calm_interval_with_nobody_turned_away_ends_the_shedding() -> None:
    admission, clock = _admission()
    await _stand(admission, clock)
    limit = admission.state().limit
    assert limit is not None
    clock.now += INTERVAL_S
    await _complete(admission, clock, 5, 0.0)  # closes the second standing interval
    assert admission.shedding
    clock.now += INTERVAL_S
    await _complete(admission, clock, 1, 0.0)
    assert not admission.shedding


async def test_a_calm_interval_with_requests_turned_away_raises_the_limit() -> None:
    admission, clock = _admission()
    await _stand(admission, clock, completions=79)  # 800/s: a limit of 16
    assert admission.state().limit == 16
    admission.observe(0.0, clock.now)  # this interval is calm
    for _ in range(16):
        await admission.enter()
    waiter = asyncio.ensure_future(admission.enter())  # turned away: waits
    await asyncio.sleep(0)
    clock.now += INTERVAL_S
    admission.observe(0.0, clock.now)  # calm, but someone was turned away
    await asyncio.sleep(0)
    assert admission.state().limit == 18 and waiter.done()  # 16 + 16 // 8, and it got in


async def test_past_the_cap_a_request_is_refused_at_once() -> None:
    admission, _ = _admission(cap=2, target=None)
    await admission.enter()
    await admission.enter()
    assert isinstance(admission.refusal_now(), TooManyInFlight)
    with pytest.raises(TooManyInFlight, match="max_in_flight_requests"):
        await admission.enter()
    admission.leave()
    await admission.enter()
    assert admission.in_flight == 2


async def test_without_a_target_long_waits_never_shed() -> None:
    admission, clock = _admission(target=None)
    for _ in range(5):
        await _complete(admission, clock, 10, 10.0)
        clock.now += INTERVAL_S
    assert not admission.shedding


async def test_a_caller_giving_up_at_the_door_leaks_no_slot() -> None:
    admission, clock = _admission()
    waiter = await _at_the_door(admission, clock)
    waiter.cancel()
    await asyncio.sleep(0)
    admission.leave()
    assert admission.in_flight == FLOOR - 1  # the cancelled waiter did not take the slot


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        Admission(0, 0.0)
    with pytest.raises(ValueError, match="floor"):
        Admission(0, 0.01, floor=0)
