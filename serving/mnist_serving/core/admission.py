"""Admission by waiting time: a slot per inference request, an overload's excess refused.

Count limits (``max_in_flight_requests``, the batching queue's bound) say nothing about time:
64 requests in flight is nothing for one-image requests on a fast core and far too many on a
slow one. What a caller feels is the wait, so the gateway watches how long admitted inference
requests wait inside it (being read and queued before their model call, and for the event
loop after it), the way CoDel watches a packet queue: a *standing* queue is one whose
*shortest* wait over a whole interval stayed above the target. A burst drains within an
interval and is left alone.

While a queue stands, a concurrency limit applies: as many requests as the process completed
within one target in the interval just ended (Little's law: in flight = rate × time), so the
admitted ones are served about within the target. It is set again after each interval the
queue still stands, raised by an eighth after each calm one, and dropped after a calm interval
in which nobody was turned away. (A limit cut by a fraction each interval, as TCP and
Netflix's AIMD limiter do, spiralled down here: refusals take CPU too, so waits stayed long
however few requests were admitted.)

A request past the limit waits at the door, which costs no CPU: its body is not even read.
While shedding the door is served newest first (adaptive LIFO, as Facebook's services do):
the newest request is the likeliest to still have a caller and the admitted ones keep a short
wait. A request that has waited :data:`DOOR_WAITS` targets is refused, 503 with Retry-After.
Refusing later than at once is deliberate: clients that re-send at once (load generators,
naive retry loops) would otherwise turn refusals into a storm that eats the CPU the admitted
requests need (measured in docs/benchmarks.md, "Overload").
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from mnist_serving.errors import Overloaded, QueueDelayed, TooManyInFlight

INTERVAL_S = 0.1  # CoDel's interval: long enough that a burst is not mistaken for overload
FLOOR = 4  # requests in flight a shedding gateway still admits: enough for batches to form
INCREASE = 8  # the limit grows by limit // INCREASE (at least 1) per calm interval
DOOR_WAITS = 25  # a request waits at most this many queue targets at the door (measured)


@dataclass(frozen=True)
class AdmissionState:
    """What a test or a log line reads: the limit (``None``: not shedding) and the counts."""

    limit: int | None
    in_flight: int
    waiting: int
    refused: int  # refusals by waiting time since the start
    standing_intervals: int  # intervals that ended with a standing queue


class Admission:
    """Inference slots for one process. :meth:`enter` takes one (waiting at the door while the
    gateway sheds), :meth:`leave` gives it back, :meth:`observe` learns from an admitted
    request's wait. ``cap``: at most this many in flight, beyond it refused at once (0: none);
    ``target_s``: the queue target (``None``: counts only, no shedding). ``clock`` is
    ``time.perf_counter`` unless a test drives time."""

    def __init__(
        self,
        cap: int,
        target_s: float | None,
        *,
        interval_s: float = INTERVAL_S,
        floor: int = FLOOR,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if (target_s is not None and target_s <= 0) or interval_s <= 0 or floor < 1:
            raise ValueError("target and interval must be positive, floor at least 1")
        self.cap = cap
        self.target_s = target_s
        self.interval_s = interval_s
        self.floor = floor
        self._clock = clock
        self._in_flight = 0
        self._limit: int | None = None
        self._door: deque[tuple[float, asyncio.Future[None]]] = deque()
        self._sweeper: asyncio.TimerHandle | None = None
        self._interval_end = -math.inf
        self._interval_start = -math.inf
        self._shortest_wait = math.inf
        self._turned_away = 0  # in this interval: refused, or made to wait
        self._completed = 0  # in this interval
        self._refused = 0
        self._standing = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def shedding(self) -> bool:
        return self._limit is not None

    def state(self) -> AdmissionState:
        return AdmissionState(
            self._limit, self._in_flight, len(self._door), self._refused, self._standing
        )

    def refusal_now(self) -> Overloaded | None:
        """The refusal an arrival would get at once (past the cap, or the door full), else
        ``None``; for a caller that wants to refuse before looking at the request."""
        if self.cap and self._in_flight >= self.cap:
            return TooManyInFlight(
                f"{self._in_flight} requests already in progress, the gateway's limit "
                "(max_in_flight_requests); retry shortly",
                retry_after=1,
            )
        return None

    async def enter(self) -> None:
        """Take a slot: at once, after a wait at the door while shedding, or raise the
        :class:`~mnist_serving.errors.Overloaded` refusal."""
        now = self._clock()
        self._tick(now)
        refusal = self.refusal_now()
        if refusal is not None:
            raise refusal
        if self._limit is None or self._in_flight < self._limit:
            self._take()
            return
        self._turned_away += 1
        if self.cap and len(self._door) >= self.cap:  # the door holds no more than the cap
            self._door.popleft()[1].set_exception(self._too_long())
            self._refused += 1
        ticket: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._door.append((now, ticket))
        self._arm_sweeper()
        try:
            await ticket  # resolved by _hand_over with the slot already taken for us
        except asyncio.CancelledError:
            if ticket.done() and not ticket.cancelled() and ticket.exception() is None:
                self.leave()  # the slot came as the caller gave up: pass it on
            raise

    def leave(self) -> None:
        """Give the slot back; the door's next request (the newest, while shedding) takes it."""
        self._in_flight -= 1
        self._completed += 1
        self._hand_over()

    def observe(self, waited_s: float, now: float) -> None:
        """An admitted request waited ``waited_s`` inside the gateway (learnt at ``now``)."""
        self._tick(now)
        if waited_s < self._shortest_wait:
            self._shortest_wait = waited_s

    # -- details --------------------------------------------------------------------------

    def _take(self) -> None:
        self._in_flight += 1

    def _hand_over(self) -> None:
        shedding = self._limit is not None
        while self._door and (self._limit is None or self._in_flight < self._limit):
            _, ticket = self._door.pop() if shedding else self._door.popleft()
            if not ticket.done():
                self._take()
                ticket.set_result(None)

    def _tick(self, now: float) -> None:
        if now >= self._interval_end:
            self._close_interval(now)
        self._refuse_waited_too_long(now)

    def _refuse_waited_too_long(self, now: float) -> None:
        if self.target_s is None:
            return
        oldest_allowed = now - self.target_s * DOOR_WAITS
        while self._door and self._door[0][0] < oldest_allowed:
            _, ticket = self._door.popleft()
            if not ticket.done():
                ticket.set_exception(self._too_long())
                self._refused += 1

    def _too_long(self) -> QueueDelayed:
        target_ms = (self.target_s or 0) * 1000
        return QueueDelayed(
            f"the gateway is overloaded: requests wait longer than its {target_ms:g} ms queue "
            "target (queue_target_ms); retry shortly",
            retry_after=1,
        )

    def _arm_sweeper(self) -> None:
        """While requests wait at the door, look at it every interval even with no traffic."""
        if self._sweeper is None and self.target_s is not None:
            loop = asyncio.get_running_loop()
            self._sweeper = loop.call_later(self.interval_s / 2, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        self._tick(self._clock())
        self._hand_over()
        if self._door:
            self._arm_sweeper()

    def _close_interval(self, now: float) -> None:
        target = self.target_s
        standing = target is not None and target < self._shortest_wait != math.inf
        if standing:
            self._standing += 1
            self._limit = max(self.floor, self._littles_law_limit(now))
        elif self._limit is not None:
            if self._turned_away == 0 and not self._door:
                self._limit = None  # the queue drained with room to spare
            else:
                self._limit += max(1, self._limit // INCREASE)
            self._hand_over()
        self._interval_end = now + self.interval_s
        self._shortest_wait = math.inf
        self._turned_away = 0
        self._completed = 0
        self._interval_start = now

    def _littles_law_limit(self, now: float) -> int:
        """As many requests as this process completes within one target, at the rate it
        completed them in the interval just ended (Little's law: in flight = rate × time)."""
        assert self.target_s is not None
        rate = self._completed / max(now - self._interval_start, 1e-6)
        return math.ceil(rate * self.target_s - 1e-9)  # up, but not for a rounding error
