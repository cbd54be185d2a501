"""Time limits on awaited work: the caller's own deadline and the gateway's request limit."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TypeVar

from mnist_serving.errors import DeadlineExceeded

T = TypeVar("T")


async def within(work: Awaitable[T], seconds: float) -> T:
    """``work`` cancelled past ``seconds`` (TimeoutError). ``asyncio.timeout`` runs it in the
    caller's task; ``wait_for`` before Python 3.12 wraps it in a new task of its own."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await work
    return await asyncio.wait_for(work, seconds)  # pragma: no cover - Python 3.10


async def bounded(work: Awaitable[T], limit_s: float, caller_deadline_s: float | None = None) -> T:
    """Run ``work`` within the gateway's request time limit and the caller's own deadline
    (the shorter wins); past it the work is cancelled and the caller gets
    :class:`DeadlineExceeded` (504 / DEADLINE_EXCEEDED)."""
    callers = caller_deadline_s is not None and caller_deadline_s < limit_s
    timeout = caller_deadline_s if callers and caller_deadline_s is not None else limit_s
    try:
        return await within(work, timeout)
    except TimeoutError:
        if callers:
            raise DeadlineExceeded(
                f"the caller's deadline ({timeout:.3f} s) passed before the answer"
            ) from None
        raise DeadlineExceeded(
            f"request took longer than the gateway's limit of {limit_s:g} s "
            "(request_timeout_ms); send fewer images per request"
        ) from None
