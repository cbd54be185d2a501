"""The batcher with a fake model: own answers in order, real merging, instant refusal when full."""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import nullcontext

import numpy as np
import pytest

from mnist_serving.errors import Overloaded
from mnist_serving.observability.metrics import create_metrics
from mnist_serving.runtimes.batching import BatchConfig, Batcher


class RecordingModel:
    """Answers row i with a one-hot of the image's first pixel value; records batch sizes."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.batches: list[int] = []
        self.gate = gate

    def __call__(self, images: np.ndarray) -> np.ndarray:
        if self.gate is not None:
            self.gate.wait(5)
        self.batches.append(len(images))
        time.sleep(0.002)  # a model call takes time, so requests pile up behind it
        out = np.zeros((len(images), 10), np.float32)
        out[np.arange(len(images)), images[:, 0, 0, 0].astype(int) % 10] = 1
        return out


def _images(labels: list[int]) -> np.ndarray:
    x = np.zeros((len(labels), 28, 28, 1), np.float32)
    x[:, 0, 0, 0] = labels
    return x


async def _batcher(model, **config) -> Batcher:
    batcher = Batcher([model], BatchConfig(**config), create_metrics(process=False), "fake")
    await batcher.start()
    return batcher


async def test_each_caller_gets_its_own_answers_in_order_whatever_the_sizes() -> None:
    model = RecordingModel()
    batcher = await _batcher(
        model, max_batch_size=16, batch_timeout_micros=2000, max_enqueued_batches=200
    )
    rng = np.random.default_rng(0)
    requests = [rng.integers(0, 10, size=int(rng.integers(1, 40))).tolist() for _ in range(60)]

    async def call(labels):
        with batcher.announce() as ticket:
            await asyncio.sleep(0)
            return await batcher.run(_images(labels), ticket)

    answers = await asyncio.gather(*(call(r) for r in requests))
    await batcher.stop()
    for labels, probs in zip(requests, answers, strict=True):
        assert probs.argmax(1).tolist() == labels
    assert max(model.batches) == 16  # requests were merged up to the limit
    assert sum(model.batches) == sum(len(r) for r in requests)


async def test_concurrent_single_images_are_merged() -> None:
    model = RecordingModel()
    batcher = await _batcher(model, max_batch_size=64, batch_timeout_micros=5000)

    async def call(label):
        with batcher.announce() as ticket:
            return await batcher.run(_images([label]), ticket)

    answers = await asyncio.gather(*(call(i % 10) for i in range(32)))
    await batcher.stop()
    assert [a.argmax(1)[0] for a in answers] == [i % 10 for i in range(32)]
    assert max(model.batches) > 1 and len(model.batches) < 32


async def test_a_lone_request_does_not_wait_for_the_timeout() -> None:
    batcher = await _batcher(RecordingModel(), batch_timeout_micros=500_000)
    started = time.perf_counter()
    with batcher.announce() as ticket:
        await batcher.run(_images([3]), ticket)
    elapsed = time.perf_counter() - started
    await batcher.stop()
    assert elapsed < 0.25  # half the 0.5 s timeout: nobody else was coming


async def test_a_full_queue_refuses_at_once() -> None:
    gate = threading.Event()
    batcher = await _batcher(
        RecordingModel(gate), max_batch_size=4, max_enqueued_batches=2, batch_timeout_micros=0
    )
    first = asyncio.create_task(batcher.run(_images([1])))  # taken by the worker, held at the gate
    await asyncio.sleep(0.05)
    queued = asyncio.create_task(batcher.run(_images([2] * 8)))  # fills the 8-image queue
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    with pytest.raises(Overloaded, match="queue is full") as info:
        await batcher.run(_images([3]))
    assert time.perf_counter() - started < 0.05
    assert info.value.retry_after == 1
    gate.set()
    assert (await first).argmax(1).tolist() == [1]
    assert (await queued).argmax(1).tolist() == [2] * 8
    await batcher.stop()


async def test_a_failing_model_fails_only_its_batch() -> None:
    calls = {"n": 0}

    def flaky(images):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return np.ones((len(images), 10), np.float32) / 10

    batcher = await _batcher(flaky, batch_timeout_micros=0)
    with pytest.raises(Exception, match="model call failed"):
        await batcher.run(_images([1]))
    assert (await batcher.run(_images([1, 2]))).shape == (2, 10)
    await batcher.stop()


async def test_a_caller_giving_up_does_not_free_a_session_still_running() -> None:
    gate = threading.Event()
    busy = {"first": 0, "second": 0}
    overlaps: list[str] = []

    def session(name):
        def run(images):
            busy[name] += 1
            if busy[name] > 1:
                overlaps.append(name)
            gate.wait(5)
            busy[name] -= 1
            return np.ones((len(images), 10), np.float32) / 10

        return run

    batcher = Batcher(
        [session("first"), session("second")],
        BatchConfig(batch_timeout_micros=0, num_batch_threads=2),
        create_metrics(process=False),
        "fake",
    )
    await batcher.start()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(batcher.run(_images([1])), 0.05)  # its thread is still inside
    later = [asyncio.create_task(batcher.run(_images([i]))) for i in range(3)]
    await asyncio.sleep(0.05)
    gate.set()
    for task in later:
        assert (await task).shape == (1, 10)
    await batcher.stop()
    assert overlaps == []  # no session ever ran two calls at once


class ThreadRecordingModel:
    """Records which thread ran each call; takes ``seconds`` per call."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.threads: list[str] = []

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.threads.append(threading.current_thread().name)
        if self.seconds:
            time.sleep(self.seconds)
        return np.full((len(images), 10), 0.1, np.float32)


async def _calls_until_on_the_loop(
    batcher, model: ThreadRecordingModel, *, company: bool = False
) -> int:
    """Single-image calls until one runs on the event loop; how many it took. The cost is
    learned from measured calls, and on a busy machine one of them can be slow (the thread was
    not scheduled), which keeps the next few in the thread until the average falls again.
    With ``company``, another request is announced during each call."""
    loop_thread = threading.current_thread().name
    for calls in range(1, 60):
        with batcher.announce() as ticket, batcher.announce() if company else nullcontext():
            await batcher.run(_images([1]), ticket)
        if model.threads[-1] == loop_thread:
            return calls
    raise AssertionError(f"a short call never ran on the event loop: {model.threads}")


async def test_a_call_known_to_be_short_runs_on_the_event_loop_even_with_company() -> None:
    model = ThreadRecordingModel()
    batcher = await _batcher(model, batch_timeout_micros=0)
    # The first call's cost is unknown, so it goes to the thread; once measured, short calls
    # run on the loop.
    await _calls_until_on_the_loop(batcher, model)
    assert model.threads[0].startswith("batch")
    # One session: calls take turns anyway, so another request on its way does not send
    # them to the thread.
    await _calls_until_on_the_loop(batcher, model, company=True)
    await batcher.stop()


async def test_a_slow_call_goes_to_the_thread() -> None:
    slow = ThreadRecordingModel(seconds=0.005)  # past the 1 ms budget
    batcher = await _batcher(slow, batch_timeout_micros=0)
    for _ in range(3):
        await batcher.run(_images([1]))
    await batcher.stop()
    assert all(name.startswith("batch") for name in slow.threads)


async def test_with_two_sessions_a_short_call_with_company_goes_to_the_thread() -> None:
    fast = ThreadRecordingModel()
    batcher = Batcher(
        [fast, fast],
        BatchConfig(batch_timeout_micros=0, num_batch_threads=2),
        create_metrics(process=False),
        "fake",
    )
    await batcher.start()
    await _calls_until_on_the_loop(batcher, fast)  # measured: short, and nothing beside it
    with batcher.announce():  # another request is on its way: the other session may take it
        await batcher.run(_images([1]))
    assert fast.threads[-1].startswith("batch")
    await _calls_until_on_the_loop(batcher, fast)  # nothing beside it again: back on the loop
    await batcher.stop()
