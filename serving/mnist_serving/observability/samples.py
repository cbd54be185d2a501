"""Sampled inputs for monitoring and retraining (``--sample-dir``), written off the hot path.

A request's images are offered after the model has answered: each is kept with probability
``rate``, and always when the model's confidence is below ``below``. Kept samples go into a
bounded queue; a background thread writes them in shards (``samples-<time>-<pid>-<n>.npz``: the
28×28 uint8 frames the model saw, the predicted digit, its confidence, the model version, the
time and the request id, and ``labels`` of -1 for a person to fill in), each written whole then
renamed. When the queue is full or a write fails, samples are dropped and counted, and no
request waits or fails for it. The folder is kept under ``max_bytes`` by removing the oldest
shards.
"""

from __future__ import annotations

import logging
import os
import random
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_serving.errors import StartupError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    frame: np.ndarray  # 28×28 uint8, as the model saw it
    digit: int
    confidence: float
    version: int
    time: float
    request_id: str


def model_frames(images: np.ndarray) -> np.ndarray:
    """Model inputs (float32 in [0, 1], any of the signatures' layouts) as 28×28 uint8 frames."""
    frames: np.ndarray = (np.clip(images.reshape(-1, 28, 28), 0.0, 1.0) * 255).round()
    return frames.astype(np.uint8)


class SampleWriter:
    def __init__(
        self,
        directory: Path,
        rate: float,
        below: float,
        max_bytes: int,
        *,
        queue_size: int = 4096,
        shard_size: int = 256,
        on_drop: Callable[[str, int], None] | None = None,
        on_write: Callable[[int], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.directory = directory
        self.rate, self.below, self.max_bytes = rate, below, max_bytes
        self.shard_size = shard_size
        self._queue: deque[Sample] = deque()
        self._queue_size = queue_size
        self._on_drop = on_drop or (lambda _reason, _n: None)
        self._on_write = on_write or (lambda _n: None)
        self._rng = rng or random.Random()  # noqa: S311 - sampling, not security
        self._wake = threading.Event()
        self._stopping = False
        self._sequence = 0
        self._thread = threading.Thread(target=self._run, name="sample-writer", daemon=True)

    def start(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StartupError(f"--sample-dir {self.directory}: cannot use it ({exc})") from None
        self._thread.start()

    def offer(self, frames: np.ndarray, probabilities: np.ndarray, version: int, rid: str) -> None:
        """Keep a sample of these answers (called on the event loop: no I/O here)."""
        digits = probabilities.argmax(axis=1)
        confidence = probabilities[np.arange(len(digits)), digits]
        now = time.time()
        for i in range(len(digits)):
            c = float(confidence[i])
            if not (c < self.below or self._rng.random() < self.rate):
                continue
            if len(self._queue) >= self._queue_size:
                self._on_drop("queue_full", 1)
                continue
            self._queue.append(Sample(frames[i].copy(), int(digits[i]), c, version, now, rid))
        if len(self._queue) >= self.shard_size:
            self._wake.set()

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop."""
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # -- the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(1.0)
            self._wake.clear()
            while self._queue:
                batch = [
                    self._queue.popleft() for _ in range(min(self.shard_size, len(self._queue)))
                ]
                self._write(batch)
            if self._stopping:
                return

    def _write(self, batch: list[Sample]) -> None:
        self._sequence += 1
        # The pid keeps the names of several worker processes writing here apart.
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        name = f"samples-{stamp}-{os.getpid()}-{self._sequence:06d}.npz"
        tmp: Path | None = None
        try:
            with tempfile.NamedTemporaryFile(
                dir=self.directory, suffix=".tmp", delete=False
            ) as out:
                tmp = Path(out.name)
                np.savez(
                    out,
                    frames=np.stack([s.frame for s in batch]),
                    digits=np.array([s.digit for s in batch], np.int8),
                    confidence=np.array([s.confidence for s in batch], np.float32),
                    version=np.array([s.version for s in batch], np.int64),
                    time=np.array([s.time for s in batch], np.float64),
                    request_id=np.array([s.request_id for s in batch]),
                    labels=np.full(len(batch), -1, np.int16),
                )
            os.replace(tmp, self.directory / name)
        except OSError as exc:
            log.warning("could not write %d samples to %s: %s", len(batch), self.directory, exc)
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            self._on_drop("write_failed", len(batch))
            return
        self._on_write(len(batch))
        self._rotate()

    def _rotate(self) -> None:
        shards = sorted(self.directory.glob("samples-*.npz"))
        sizes = [p.stat().st_size for p in shards]
        total = sum(sizes)
        for path, size in zip(shards, sizes, strict=True):
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size
