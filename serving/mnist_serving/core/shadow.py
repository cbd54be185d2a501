"""Shadow traffic: a share of client requests mirrored to a candidate version, off the path.

The model config names the version (label ``shadow``) and the share (``shadow_weight``); the
core offers each chosen request's images and the answer its client got. Clients always get
the serving version's answer: the mirror goes into a small bounded queue that one task works
through, all the waiting mirrors in one model call, so a client never waits for it. Under load mirrors are dropped first, and counted:
when the queue is full, or the gateway is shedding its own requests. For every mirrored
request the candidate's answer is compared with the one the client got, image by image:
whether the digit agrees, the confidence difference, the candidate's own time.

    mnist_shadow_requests_total{version, outcome}      compared, dropped, failed
    mnist_shadow_images_total{version, agreement}      agree, disagree
    mnist_shadow_confidence_delta{version}             the candidate's confidence minus the
                                                       serving version's, per image
    mnist_shadow_duration_seconds{version}             the candidate's time per request
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import numpy as np

from mnist_serving.core.admission import Admission
from mnist_serving.observability.metrics import Metrics
from mnist_serving.repositories.repository import ServedVersion

log = logging.getLogger(__name__)
QUEUED_REQUESTS = 32  # mirrors waiting at most; one more is dropped
BATCHED_REQUESTS = 32  # waiting mirrors answered by one model call, at most


@dataclass(frozen=True)
class _Mirror:
    target: ServedVersion
    images: np.ndarray
    answered: np.ndarray  # what the client got


class ShadowTraffic:
    def __init__(self, metrics: Metrics, admission: Admission, queued: int = QUEUED_REQUESTS):
        self._metrics = metrics
        self._admission = admission
        self._queued = queued
        self._queue: asyncio.Queue[_Mirror] | None = None
        self._worker: asyncio.Task[None] | None = None

    def offer(self, target: ServedVersion, images: np.ndarray, answered: np.ndarray) -> None:
        """Mirror one request, or drop it (counted) when the gateway has no room for it."""
        if self._queue is None:
            self._queue = asyncio.Queue(self._queued)
            self._worker = asyncio.get_running_loop().create_task(self._work(), name="shadow")
        if self._admission.shedding or self._queue.full():
            self._count(target, "dropped")
            return
        self._queue.put_nowait(_Mirror(target, images, answered))

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            mirrors = [await self._queue.get()]
            while not self._queue.empty() and len(mirrors) < BATCHED_REQUESTS:
                mirrors.append(self._queue.get_nowait())
            for group in _by_target(mirrors):
                try:
                    await self._compare(group)
                except Exception as exc:  # noqa: BLE001 - a candidate's failure is a figure
                    for mirror in group:
                        self._count(mirror.target, "failed")
                    log.debug("shadow version %d failed: %s", group[0].target.version, exc)

    async def _compare(self, group: list[_Mirror]) -> None:
        """The waiting mirrors of one target in one model call: the shadow's work costs a
        call per wake-up, not per request."""
        target = group[0].target
        images = np.concatenate([m.images for m in group])
        batcher = target.batcher
        with batcher.announce() as ticket:
            started = time.perf_counter()
            probs = await batcher.run(images, ticket)
            seconds = time.perf_counter() - started
        answered = np.concatenate([m.answered for m in group])
        version = str(target.version)
        rows = np.arange(len(probs))
        ours, theirs = answered.argmax(axis=1), probs.argmax(axis=1)
        agreed = int((ours == theirs).sum())
        metrics = self._metrics
        metrics.series("shadow_images", version, "agree").inc(agreed)
        metrics.series("shadow_images", version, "disagree").inc(len(probs) - agreed)
        delta = probs[rows, theirs] - answered[rows, ours]
        metrics.shadow_confidence_delta.labels(version).observe_many(delta)
        latency = metrics.series("shadow_latency", version)
        for mirror in group:
            latency.observe(seconds)
            self._count(mirror.target, "compared")

    def _count(self, target: ServedVersion, outcome: str) -> None:
        self._metrics.series("shadow_requests", str(target.version), outcome).inc()


def _by_target(mirrors: list[_Mirror]) -> list[list[_Mirror]]:
    """Mirrors grouped by the version they go to (one, unless the config just changed)."""
    groups: dict[int, list[_Mirror]] = {}
    for mirror in mirrors:
        groups.setdefault(id(mirror.target), []).append(mirror)
    return list(groups.values())
