"""The last images served, as the drift score reads them: per image its raw moments
(:func:`mnist_contract.drift.raw_moments`), the model's confidence and digit, and when.

A bounded ring per process. Each model call's arrays (what the model was given, and its
answers) are kept as they are and written together with those of the next 50 ms in one pass:
numpy's cost per call, not per image, is most of the work for a call of one image. With
several worker processes each ring is a memory-mapped file
in the workers' shared folder and a reader reads them all, as
:mod:`~mnist_serving.observability.recent_traffic` does, so whichever worker answers a scrape
or a ``/drift`` request scores the gateway's window, not its own share of it.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_contract.drift import RAW_COLUMNS, raw_moments
from mnist_serving.observability.rings import every_ring, own_ring, ring_file

CAPACITY = 16_384  # images per process; a window reads at most this many of the newest
FLUSH_S = 0.05  # calls are written together this often (a reader may miss the last 50 ms)
FLUSH_IMAGES = 1024  # ... or as soon as this many images wait
RING_SUFFIX = ".inputs"
_TIME, _RAW, _CONFIDENCE, _DIGIT = 0, slice(1, 1 + RAW_COLUMNS), 1 + RAW_COLUMNS, 2 + RAW_COLUMNS
COLUMNS = 3 + RAW_COLUMNS


def inputs_path(folder: Path, pid: int) -> Path:
    return ring_file(folder, "inputs", RING_SUFFIX, pid)


class InputWindow:
    def __init__(self, capacity: int = CAPACITY, shared_dir: Path | None = None) -> None:
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending_images = 0
        self._timer: asyncio.TimerHandle | None = None
        self._file = inputs_path(shared_dir, os.getpid()) if shared_dir is not None else None
        self._ring = own_ring(capacity, COLUMNS, self._file)
        self._next = 0

    def observe(self, images: np.ndarray, probabilities: np.ndarray) -> None:
        """One model call's images (model inputs) and answers: written within :data:`FLUSH_S`
        with the calls after it (at once outside an event loop)."""
        self._pending.append((images.reshape(-1, 784), probabilities))
        self._pending_images += len(images)
        if self._pending_images >= FLUSH_IMAGES:
            self.flush()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(FLUSH_S, self.flush)
            except RuntimeError:  # no event loop: a tool or a test, one call at a time
                self.flush()

    def flush(self) -> None:
        """Write what waits."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        pending, self._pending, self._pending_images = self._pending, [], 0
        if len(pending) == 1:
            images, probabilities = pending[0]
        else:
            images = np.concatenate([i for i, _ in pending])
            probabilities = np.concatenate([p for _, p in pending])
        self._write_ring(images, probabilities)

    def _write_ring(self, images: np.ndarray, probabilities: np.ndarray) -> None:
        size = len(self._ring)
        n = min(len(images), size)
        images, probabilities = images[len(images) - n :], probabilities[len(images) - n :]
        start = self._next % size
        first = min(n, size - start)  # the rest, if any, wraps round to the ring's start
        self._write(start, images[:first], probabilities[:first])
        if first < n:
            self._write(0, images[first:], probabilities[first:])
        self._next = start + n

    def _write(self, at: int, images: np.ndarray, probabilities: np.ndarray) -> None:
        rows = self._ring[at : at + len(images)]
        rows[:, _RAW] = raw_moments(images)
        rows[:, _CONFIDENCE] = probabilities.max(axis=1)
        rows[:, _DIGIT] = probabilities.argmax(axis=1)
        rows[:, _TIME] = time.monotonic()  # last: a reader that sees the time sees the row

    def latest(self, most: int, max_age_s: float) -> Rows:
        """The newest ``most`` images of the last ``max_age_s`` seconds, every worker's (this
        one's to the last call; the others' to their last write)."""
        self.flush()
        rows = np.concatenate(self._rings())
        now = time.monotonic()
        rows = rows[rows[:, _TIME] >= max(now - max_age_s, np.finfo(float).tiny)]
        if len(rows) > most:
            rows = rows[np.argpartition(rows[:, _TIME], len(rows) - most)[len(rows) - most :]]
        age = float(now - rows[:, _TIME].min()) if len(rows) else 0.0
        return Rows(rows[:, _RAW], rows[:, _CONFIDENCE], rows[:, _DIGIT].astype(np.int64), age)

    def _rings(self) -> list[np.ndarray]:
        return every_ring(self._ring, self._file, RING_SUFFIX, COLUMNS)


@dataclass(frozen=True)
class Rows:
    """A window's images: raw moments [N, 8], confidences, digits, and the oldest's age."""

    raw: np.ndarray
    confidence: np.ndarray
    digit: np.ndarray
    age_s: float

    def __len__(self) -> int:
        return len(self.raw)

    @classmethod
    def empty(cls) -> Rows:
        return cls(np.empty((0, RAW_COLUMNS)), np.empty(0), np.empty(0, np.int64), 0.0)
