"""Adaptive batching: concurrent requests merged into one model call, answers split back.

Parameters carry TF Serving's names. A worker takes the oldest waiting request and gathers
more until ``max_batch_size`` images are in hand or the first request has waited
``batch_timeout_micros`` — but it only waits while other requests are known to be on their way
(announced by :meth:`Batcher.announce`), so a lone request never pays the timeout. Requests
larger than ``max_batch_size`` are split into several queue entries and joined back in order.
The queue holds at most ``max_batch_size × max_enqueued_batches`` images; a request that does
not fit is refused at once with :class:`Overloaded` rather than left to time out.

A lone request (alone in the gateway, nothing queued, a session free) skips the queue and calls
the model from its own task, and a small local call known to be shorter than
``INLINE_BUDGET_S`` runs on the event loop instead of a thread: each hand-off (to a worker, to
a thread and back) costs an event-loop wake-up, which at low load was most of the gateway's own
latency. Sessions are a pool that workers and direct calls borrow from, so no session ever runs
two batches at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from mnist_serving.errors import BackendUnavailable, Overloaded, ServingError
from mnist_serving.metrics import Metrics
from mnist_serving.runtimes import Session

log = logging.getLogger(__name__)
# A lone small request runs a local model on the event loop itself when the call is known to
# take at most this long: the thread hand-off it saves costs ~0.5 ms on a small machine, and
# holding the loop this briefly delays nobody (it is used only when no one else is waiting).
INLINE_BUDGET_S = 0.001
_SMALL_BATCH = 8  # calls up to this many images feed the per-image estimate


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
class _Task:
    images: np.ndarray
    future: asyncio.Future[np.ndarray]
    enqueued: float = field(default_factory=time.perf_counter)


class Batcher:
    def __init__(
        self, sessions: Sequence[Session], config: BatchConfig, metrics: Metrics, runtime: str
    ) -> None:
        if len(sessions) != config.num_batch_threads:
            raise ValueError("one session per batch thread")
        self._sessions = list(sessions)
        self._idle = list(sessions)  # sessions not inside a model call
        # Moving average of a small local call's model time per image; unknown (so nothing
        # runs inline) until measured.
        self._seconds_per_image = math.inf
        self.config = config
        self._metrics = metrics
        self._runtime = runtime
        self._waiting: deque[_Task] = deque()
        self._queued_images = 0
        self._expected = 0
        self._running = 0  # batches inside a model call now
        self._wakeup = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self._executor = ThreadPoolExecutor(config.num_batch_threads, thread_name_prefix="batch")

    async def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._work(), name=f"batch-worker-{i}")
            for i in range(len(self._sessions))
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

    @property
    def queued_images(self) -> int:
        return self._queued_images

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
        self, images: np.ndarray, ticket: Ticket | None = None, *, solo: bool = True
    ) -> np.ndarray:
        """Probabilities [N,10] for float32 images [N,28,28,1], through the shared queue.

        ``solo`` says the caller knows of no other request in the gateway (it counts them;
        the batcher sees only those already queued or announced): only then may it go direct.
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
        if solo and self._alone(n):
            return await self._direct(images)
        loop = asyncio.get_running_loop()
        step = self.config.max_batch_size
        tasks = [_Task(images[i : i + step], loop.create_future()) for i in range(0, n, step)]
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

    def _alone(self, n: int) -> bool:
        return (
            n <= self.config.max_batch_size
            and not self._waiting
            and self._expected == 0
            and bool(self._idle)
        )

    async def _direct(self, images: np.ndarray) -> np.ndarray:
        self._metrics.queue_wait.observe(0.0)
        inline = len(images) * self._seconds_per_image <= INLINE_BUDGET_S
        return await self._call(self._idle.pop(), images, inline)

    async def _work(self) -> None:
        while True:
            session = await self._claim_session()
            batch = await self._next_batch()
            if not batch:  # every caller in it gave up, or another worker took them
                self._release(session)
                continue
            started = time.perf_counter()
            for task in batch:
                self._metrics.queue_wait.observe(started - task.enqueued)
            images = (
                batch[0].images if len(batch) == 1 else np.concatenate([t.images for t in batch])
            )
            try:
                probs = await self._call(session, images)
            except ServingError as error:
                for task in batch:
                    if not task.future.done():
                        task.future.set_exception(error)
                continue
            offset = 0
            for task in batch:
                size = len(task.images)
                if not task.future.done():
                    task.future.set_result(probs[offset : offset + size])
                offset += size

    async def _claim_session(self) -> Session:
        """Wait until requests are queued and a session is free, and take the session.

        A batch is formed only then, so while every session is busy it keeps growing (and
        counting against the queue bound), as TF Serving's batcher does.
        """
        while not (self._waiting and self._idle):
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._idle.pop()

    async def _call(self, session: Session, images: np.ndarray, inline: bool = False) -> np.ndarray:
        """One model call on a borrowed session, timed and counted; the session goes back to
        the pool when the call is over. Failures come out as :class:`ServingError`."""
        self._metrics.batch_size.observe(len(images))
        self._running += 1
        started = time.perf_counter()
        probs: np.ndarray
        try:
            if inspect.iscoroutinefunction(session):
                try:
                    probs = await session(images)
                finally:
                    self._give_back(session)
            elif inline:
                try:
                    probs = session(images)  # type: ignore[assignment]
                finally:
                    self._give_back(session)
                self._learn(len(images), time.perf_counter() - started)
            else:
                probs, compute_s = await self._in_thread(session, images)
                self._learn(len(images), compute_s)
        except ServingError:  # a remote backend's typed answer, passed on as is
            raise
        except Exception as exc:  # a failed model call fails its batch only
            log.error("model call failed on a batch of %d images", len(images), exc_info=exc)
            raise ServingError(f"model call failed ({exc.__class__.__name__})") from None
        self._metrics.inference_latency.labels(self._runtime).observe(time.perf_counter() - started)
        return probs

    def _learn(self, n: int, compute_s: float) -> None:
        """Update the per-image cost of a local model call (the model's own time, without
        the thread hand-off), which decides what may run on the event loop."""
        if n > _SMALL_BATCH:
            return
        sample = compute_s / n
        if self._seconds_per_image == math.inf:
            self._seconds_per_image = sample
        else:
            self._seconds_per_image = 0.9 * self._seconds_per_image + 0.1 * sample

    async def _in_thread(self, session: Session, images: np.ndarray) -> tuple[np.ndarray, float]:
        # A caller that gives up (deadline) must not hand the session back while the thread
        # still runs it: interpreters are not thread-safe. It returns when the thread is done.
        def timed() -> tuple[np.ndarray, float]:
            started = time.perf_counter()
            probs = np.asarray(session(images))
            return probs, time.perf_counter() - started

        loop = asyncio.get_running_loop()
        try:
            job = self._executor.submit(timed)
        except RuntimeError:  # the executor is shut down: the batcher has stopped
            self._give_back(session)
            raise BackendUnavailable("server is shutting down") from None
        job.add_done_callback(lambda _: loop.call_soon_threadsafe(self._give_back, session))
        return await asyncio.wrap_future(job)

    def _give_back(self, session: Session) -> None:
        self._running -= 1
        self._release(session)

    def _release(self, session: Session) -> None:
        self._idle.append(session)
        if self._waiting:  # a worker may be waiting for this session (else let it sleep)
            self._wakeup.set()

    async def _next_batch(self) -> list[_Task]:
        if not self._waiting:
            return []
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
                async with asyncio.timeout(remaining):
                    await self._wakeup.wait()
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


class Ticket:
    def __init__(self, batcher: Batcher) -> None:
        self._batcher: Batcher | None = batcher

    def release(self) -> None:
        if self._batcher is not None:
            self._batcher._expected -= 1
            self._batcher = None
