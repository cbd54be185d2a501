"""Adaptive batching: concurrent requests merged into one model call, answers split back.

Parameters carry TF Serving's names. A worker takes the oldest waiting request and gathers
more until ``max_batch_size`` images are in hand or the first request has waited
``batch_timeout_micros`` — but it only waits while other requests are known to be on their way
(announced by :meth:`Batcher.announce`), so a lone request never pays the timeout. Requests
larger than ``max_batch_size`` are split into several queue entries and joined back in order.
The queue holds at most ``max_batch_size × max_enqueued_batches`` images; a request that does
not fit is refused at once with :class:`Overloaded` rather than left to time out.

A local model call known (by measurement) to take under ``INLINE_BUDGET_S`` runs on the event
loop; a longer one runs in the session's thread, so the loop goes on reading and answering other
requests meanwhile. The hand-off to a thread and back costs two wake-ups and a GIL exchange,
more than the model takes for a few images of this size, so short calls on the loop cost less
CPU per request at the same p99 (docs/benchmarks.md, "What a request costs"). With
several sessions, a short call holds the loop only when no other call could start beside it
(nothing else queued, announced or running).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mnist_serving.deadlines import within
from mnist_serving.errors import BackendUnavailable, Overloaded, ServingError
from mnist_serving.observability.metrics import Metrics
from mnist_serving.observability.tracing import Tracing, epoch_ns
from mnist_serving.runtimes.runtime import Session

log = logging.getLogger(__name__)
# Holding the event loop this long delays the requests being read by less than a batch's time
# in the queue, and saves the thread hand-off's CPU and latency (docs/benchmarks.md).
INLINE_BUDGET_S = 0.001
# Told every model call's inputs and answers once they are answered (the drift window).
Observer = Callable[[np.ndarray, np.ndarray], None]
_SMALL_CALL = 8  # images; calls up to this size feed the per-image cost estimate


@dataclass(frozen=True)
class BatchConfig:
    max_batch_size: int = 64
    batch_timeout_micros: int = 500
    max_enqueued_batches: int = 16
    num_batch_threads: int = 1

    @property
    def capacity(self) -> int:
        return self.max_batch_size * self.max_enqueued_batches


@dataclass
class Timing:
    """A request's time in the queue and in model calls, seconds (summed over its batches), and
    its trace span when tracing is on. ``arrived``, ``model_started`` and ``answered``
    (``perf_counter`` times: when the gateway took the request, when its first model call
    began, when its last one ended) give the waits the admission governor learns from."""

    queue_s: float = 0.0
    model_s: float = 0.0
    span: Any = None
    arrived: float = 0.0
    model_started: float = 0.0
    answered: float = 0.0


@dataclass
class _Task:
    images: np.ndarray
    future: asyncio.Future[np.ndarray]
    timing: Timing | None = None
    enqueued: float = field(default_factory=time.perf_counter)


class Batcher:
    def __init__(
        self,
        sessions: Sequence[Session],
        config: BatchConfig,
        metrics: Metrics,
        runtime: str,
        tracing: Tracing | None = None,
        observe: Observer | None = None,
    ) -> None:
        if len(sessions) != config.num_batch_threads:
            raise ValueError("one session per batch thread")
        self._sessions = list(sessions)
        self._observe = observe
        self.config = config
        self._metrics = metrics
        self._runtime = runtime
        self._tracing = tracing or Tracing()
        self._waiting: deque[_Task] = deque()
        self._queued_images = 0
        self._expected = 0
        self._running = 0  # batches inside a model call now
        self._wakeup = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self._executor = ThreadPoolExecutor(config.num_batch_threads, thread_name_prefix="batch")
        # A small local call's model time per image, measured; until then nothing runs inline.
        self._seconds_per_image = math.inf

    async def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._work(session), name=f"batch-worker-{i}")
            for i, session in enumerate(self._sessions)
        ]

    async def stop(self) -> None:
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        while self._waiting:
            task = self._waiting.popleft()
            if not task.future.done():
                task.future.set_exception(BackendUnavailable("server is shutting down"))
        self._queued_images = 0
        self._executor.shutdown(wait=True)

    async def drain(self, timeout: float = 30.0) -> None:
        """Stop once every announced, queued and running request has its answer (a version
        leaving rotation finishes its work; ``timeout`` bounds a stuck backend)."""
        deadline = time.monotonic() + timeout
        while (self._expected or self._waiting or self._running) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        await self.stop()

    @contextlib.contextmanager
    def announce(self) -> Iterator[Ticket]:
        """Mark a request that will submit soon, so a forming batch may wait for it.

        The ticket is handed to :meth:`run`; leaving the block (submitted or failed) releases it.
        """
        ticket = Ticket(self)
        self._expected += 1
        try:
            yield ticket
        finally:
            ticket.release()

    async def run(
        self,
        images: np.ndarray,
        ticket: Ticket | None = None,
        *,
        timing: Timing | None = None,
    ) -> np.ndarray:
        """Probabilities [N,10] for float32 images [N,28,28,1], through the shared queue.

        ``timing``, when given, is added the time the request spent queued and in model calls.
        """
        if ticket is not None:
            ticket.release()
        n = len(images)
        if self._queued_images + n > self.config.capacity:
            raise Overloaded(
                f"batching queue is full ({self._queued_images} images waiting, room for "
                f"{self.config.capacity}); retry shortly",
                retry_after=1,
            )
        loop = asyncio.get_running_loop()
        step = self.config.max_batch_size
        tasks = [
            _Task(images[i : i + step], loop.create_future(), timing) for i in range(0, n, step)
        ]
        self._waiting.extend(tasks)
        self._queued_images += n
        self._metrics.queue_depth.set(self._queued_images)
        self._wakeup.set()
        try:
            parts = [await t.future for t in tasks]
        except asyncio.CancelledError:
            for t in tasks:
                t.future.cancel()
            raise
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _trace(self, batch: list[_Task], started: float, finished: float) -> None:
        """Each traced request's queue and model spans (the batch has its own)."""
        begin, end = epoch_ns(started), epoch_ns(finished)
        for task in batch:
            if task.timing is not None and task.timing.span is not None:
                self._tracing.child("queue", task.timing.span, epoch_ns(task.enqueued), begin)
                self._tracing.child("model", task.timing.span, begin, end)

    async def _work(self, session: Session) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            started = time.perf_counter()
            for task in batch:
                self._metrics.queue_wait.observe(started - task.enqueued)
            images = (
                batch[0].images if len(batch) == 1 else np.concatenate([t.images for t in batch])
            )
            self._metrics.batch_size.observe(len(images))
            self._running += 1
            traced = (
                self._tracing.start_batch([t.timing.span for t in batch if t.timing], len(images))
                if self._tracing.enabled
                else None  # nothing to gather for every batch when tracing is off
            )
            try:
                if inspect.iscoroutinefunction(session):
                    with self._tracing.current(traced):  # a remote call continues the trace
                        probs = await session(images)
                else:
                    if self._may_run_inline(len(images)):
                        probs, compute_s = _timed(session, images)
                    else:
                        probs, compute_s = await loop.run_in_executor(
                            self._executor, _timed, session, images
                        )
                    self._learn(len(images), compute_s)
            except Exception as exc:  # noqa: BLE001 - a failed model call fails its batch only
                self._fail(batch, exc)
                continue
            finally:
                self._running -= 1
                if traced is not None:
                    traced.end()
            finished = time.perf_counter()
            self._metrics.series("inference_latency", self._runtime).observe(finished - started)
            for task in batch:
                if task.timing is not None:
                    if not task.timing.model_started:
                        task.timing.model_started = started
                    task.timing.queue_s += started - task.enqueued
                    task.timing.answered = finished
                    task.timing.model_s += finished - started
            if traced is not None:
                self._trace(batch, started, finished)
            offset = 0
            for task in batch:
                size = len(task.images)
                if not task.future.done():
                    task.future.set_result(probs[offset : offset + size])
                offset += size
            if self._observe is not None:  # after the answers (a drift window keeps them)
                self._observed(images, probs)

    def _observed(self, images: np.ndarray, probs: np.ndarray) -> None:
        try:
            assert self._observe is not None
            self._observe(images, np.asarray(probs))
        except Exception:  # a record lost is no reason to fail the batch that was answered
            log.exception("the batch's inputs were not recorded for the drift window")

    def _may_run_inline(self, n: int) -> bool:
        """A local call may hold the event loop only when it is known to be short and, with
        several sessions, no other call could start beside it meanwhile."""
        if n * self._seconds_per_image > INLINE_BUDGET_S:
            return False
        if len(self._sessions) == 1:
            return True  # model calls take turns anyway
        return self._running == 1 and not self._waiting and self._expected == 0

    def _learn(self, n: int, compute_s: float) -> None:
        if n > _SMALL_CALL:
            return
        sample = compute_s / n
        if self._seconds_per_image == math.inf:
            self._seconds_per_image = sample
        else:  # a moving average, so a slow spell (a busy machine) moves calls back to threads
            self._seconds_per_image = 0.9 * self._seconds_per_image + 0.1 * sample

    @staticmethod
    def _fail(batch: list[_Task], exc: Exception) -> None:
        if isinstance(exc, ServingError):  # a remote backend's typed answer, passed on as is
            error = exc
        else:
            log.error("model call failed on a batch of %d requests", len(batch), exc_info=exc)
            error = ServingError(f"model call failed ({exc.__class__.__name__})")
        for task in batch:
            if not task.future.done():
                task.future.set_exception(error)

    async def _next_batch(self) -> list[_Task]:
        while not self._waiting:
            self._wakeup.clear()
            await self._wakeup.wait()
        timeout = self.config.batch_timeout_micros / 1e6
        deadline = self._waiting[0].enqueued + timeout
        # Wait for company only while the batch has room and others are on their way.
        while (
            self._queued_images < self.config.max_batch_size
            and self._expected > 0
            and (remaining := deadline - time.perf_counter()) > 0
        ):
            self._wakeup.clear()
            try:
                await within(self._wakeup.wait(), remaining)
            except TimeoutError:
                break
        batch: list[_Task] = []
        size = 0
        while self._waiting:
            head = self._waiting[0]
            if batch and size + len(head.images) > self.config.max_batch_size:
                break
            self._waiting.popleft()
            self._queued_images -= len(head.images)
            if head.future.done():  # its caller gave up while it waited
                continue
            batch.append(head)
            size += len(head.images)
        self._metrics.queue_depth.set(self._queued_images)
        return batch


def _timed(session: Session, images: np.ndarray) -> tuple[np.ndarray, float]:
    """The model's answer and the time the call itself took (without any hand-off)."""
    started = time.perf_counter()
    probs = session(images)
    return probs, time.perf_counter() - started  # type: ignore[return-value]


class Ticket:
    def __init__(self, batcher: Batcher) -> None:
        self._batcher: Batcher | None = batcher

    def release(self) -> None:
        if self._batcher is not None:
            self._batcher._expected -= 1
            self._batcher = None
