"""Time limits on awaited work: the caller's own deadline and the gateway's request limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

from mnist_serving.errors import DeadlineExceeded

T = TypeVar("T")


async def within(work: Awaitable[T], seconds: float) -> T:
    """``work`` cancelled past ``seconds`` (TimeoutError), run in the caller's task
    (``wait_for`` before Python 3.12 wraps it in a new task of its own)."""
    async with asyncio.timeout(seconds):
        return await work


class RequestLimit:
    """The gateway's time limit on a request, kept for every request of an event loop by one
    timer that looks every tenth of the limit (at least every 5 ms, at most every 0.5 s) and
    cancels what has run past it: a timer per request (``asyncio.timeout``) costs more than
    the rest of the request's bookkeeping. A caller's own deadline, when it is shorter, gets
    its own timer: it must be met to the millisecond.

        limit = RequestLimit(30.0)
        answer = await limit.bound(work, caller_deadline_s)   # DeadlineExceeded past either
    """

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self.tick_s = min(max(limit_s / 10, 0.005), 0.5)
        self._running: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._timer: asyncio.TimerHandle | None = None

    async def bound(self, work: Awaitable[T], caller_deadline_s: float | None = None) -> T:
        if caller_deadline_s is not None and caller_deadline_s < self.limit_s:
            return await within_callers_deadline(work, caller_deadline_s)
        task = asyncio.current_task()
        assert task is not None
        self._running[task] = time.monotonic() + self.limit_s
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.tick_s, self._sweep)
        try:
            return await work
        except asyncio.CancelledError:
            if task not in self._expired:
                raise  # cancelled by someone else: the caller went away, the server stops
            raise self._exceeded() from None
        finally:
            self._running.pop(task, None)
            if task in self._expired:  # this limit's cancel is spent, answered or swallowed
                self._expired.discard(task)
                task.uncancel()

    def _sweep(self) -> None:
        self._timer = None
        now = time.monotonic()
        for task, deadline in self._running.items():
            if deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        if self._running:
            self._timer = asyncio.get_running_loop().call_later(self.tick_s, self._sweep)

    def _exceeded(self) -> DeadlineExceeded:
        return DeadlineExceeded(
            f"request took longer than the gateway's limit of {self.limit_s:g} s "
            "(request_timeout_ms); send fewer images per request"
        )


async def within_callers_deadline(work: Awaitable[T], seconds: float) -> T:
    """``work`` cancelled past the caller's own deadline (:class:`DeadlineExceeded`), for a
    deadline a request states in its body; the gateway's limit is kept around the request."""
    try:
        return await within(work, seconds)
    except TimeoutError:
        raise DeadlineExceeded(
            f"the caller's deadline ({seconds:.3f} s) passed before the answer"
        ) from None
