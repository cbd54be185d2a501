"""State that is one for the whole gateway, however many worker processes serve it.

A canary share and a per-key rate limit mean nothing per process: with two workers, each
doing its own 10% would still give 10% overall only on average, and a key limited to 5
requests/s would get 5 from each. So both keep their few numbers in :class:`SharedFloats`:
a plain list in a single process, or an array in shared memory that the supervisor creates
and each worker inherits when it is spawned, behind one lock (a few hundred nanoseconds).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any


class SharedFloats:
    """``size`` floats behind a lock: this process's own, or (given a multiprocessing
    ``context``) shared with the worker processes spawned from it."""

    def __init__(self, size: int, fill: float = 0.0, context: BaseContext | None = None) -> None:
        self._array: Any = context.Array("d", [fill] * size) if context is not None else None
        self._local = [fill] * size
        self._attach()

    def _attach(self) -> None:
        if self._array is None:
            self.values: Any = self._local
            self.lock: Any = threading.Lock()
        else:  # the raw array under the array's own lock: one acquisition per operation
            self.values = self._array.get_obj()
            self.lock = self._array.get_lock()

    def __getstate__(self) -> dict[str, Any]:
        if self._array is None:
            raise TypeError("a process-local SharedFloats cannot be sent to another process")
        return {"_array": self._array}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._array = state["_array"]
        self._local = []
        self._attach()


class CanaryCredit:
    """Deterministic weighting: each unpinned request adds the canary's weight to a credit,
    and takes the canary when the credit reaches 1; over any run of requests (across every
    worker, when shared) the canary gets its share within one request, not "about" its
    share as a coin flip would give."""

    def __init__(self, shared: SharedFloats | None = None) -> None:
        self._credit = shared if shared is not None else SharedFloats(1)

    def take(self, weight: float) -> bool:
        """Whether this request goes to the canary."""
        cell = self._credit
        with cell.lock:
            credit = cell.values[0] + weight
            hit = bool(credit >= 1.0)
            cell.values[0] = credit - 1.0 if hit else credit
        return hit


@dataclass(frozen=True)
class GatewayShare:
    """What one worker process shares with the others of its gateway: the folder holding
    every worker's metrics and recent-traffic ring, the canary credit and the rate-limit
    buckets. Made by the supervisor, sent to each worker when it is spawned."""

    worker: int  # this worker's index, 0 … N-1 (a restarted worker keeps its index)
    folder: Path
    canary: SharedFloats
    buckets: SharedFloats
