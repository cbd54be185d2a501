"""Recent-traffic figures for people (the demo page's live panel): requests per second and
latency percentiles over the last minute, from a bounded ring of (time, latency) samples.

Prometheus remains the source for dashboards; this answers "how is it doing right now"
without one. With several worker processes each writes its ring to a memory-mapped file in
one folder and a summary reads them all, so whichever worker answers speaks for the gateway
(``time.monotonic`` is the system-wide monotonic clock on Linux, the same in every process).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from mnist_serving.observability.rings import every_ring, own_ring, ring_file

WINDOW_SECONDS = 60.0
MAX_SAMPLES = 200_000  # per process: ~3,300 req/s for a minute; older samples fall off beyond
RING_SUFFIX = ".ring"


def ring_path(folder: Path, pid: int) -> Path:
    return ring_file(folder, "recent", RING_SUFFIX, pid)


class RecentTraffic:
    def __init__(
        self,
        window: float = WINDOW_SECONDS,
        max_samples: int = MAX_SAMPLES,
        shared_dir: Path | None = None,
    ) -> None:
        self.window = window
        # Rows of (monotonic time, seconds).
        self._file = ring_path(shared_dir, os.getpid()) if shared_dir is not None else None
        self._ring = own_ring(max_samples, 2, self._file)
        self._next = 0

    def record(self, seconds: float, now: float | None = None) -> None:
        row = self._ring[self._next % len(self._ring)]
        # The latency before the time: a reader that sees the new time sees its latency.
        row[1] = seconds
        row[0] = time.monotonic() if now is None else now
        self._next += 1

    def summary(self, now: float | None = None) -> dict[str, float | int | None]:
        now = time.monotonic() if now is None else now
        rows = np.concatenate(self._rings())
        recent = rows[rows[:, 0] >= max(now - self.window, np.finfo(float).tiny)]
        if recent.size == 0:
            return {
                "window_seconds": self.window,
                "requests": 0,
                "requests_per_second": 0.0,
                "p50_ms": None,
                "p99_ms": None,
            }
        span = min(self.window, max(now - float(recent[:, 0].min()), 1.0))
        p50, p99 = np.percentile(recent[:, 1], [50, 99]) * 1000
        return {
            "window_seconds": self.window,
            "requests": len(recent),
            "requests_per_second": round(len(recent) / span, 2),
            "p50_ms": round(float(p50), 3),
            "p99_ms": round(float(p99), 3),
        }

    def _rings(self) -> list[np.ndarray]:
        """This process's ring, or every worker's in the shared folder."""
        return every_ring(self._ring, self._file, RING_SUFFIX, 2)
