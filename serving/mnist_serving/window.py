"""Recent-traffic figures for people (the demo page's live panel): requests per second and
latency percentiles over the last minute, from a bounded ring of (time, latency) samples.

Prometheus remains the source for dashboards; this answers "how is it doing right now"
without one.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np

WINDOW_SECONDS = 60.0
MAX_SAMPLES = 200_000  # ~3,300 req/s for a minute; older samples fall off beyond that


class RecentTraffic:
    def __init__(self, window: float = WINDOW_SECONDS, max_samples: int = MAX_SAMPLES) -> None:
        self.window = window
        self._samples: deque[tuple[float, float]] = deque(maxlen=max_samples)

    def record(self, seconds: float, now: float | None = None) -> None:
        self._samples.append((time.monotonic() if now is None else now, seconds))

    def summary(self, now: float | None = None) -> dict[str, float | int | None]:
        now = time.monotonic() if now is None else now
        while self._samples and self._samples[0][0] < now - self.window:
            self._samples.popleft()
        latencies = np.fromiter((s for _, s in self._samples), float, len(self._samples))
        if latencies.size == 0:
            return {"window_seconds": self.window, "requests": 0, "requests_per_second": 0.0,
                    "p50_ms": None, "p99_ms": None}  # fmt: skip
        span = min(self.window, max(now - self._samples[0][0], 1.0))
        p50, p99 = np.percentile(latencies, [50, 99]) * 1000
        return {
            "window_seconds": self.window,
            "requests": int(latencies.size),
            "requests_per_second": round(latencies.size / span, 2),
            "p50_ms": round(float(p50), 3),
            "p99_ms": round(float(p99), 3),
        }
