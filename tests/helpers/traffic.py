"""Closed-loop traffic in a background thread, recording every request's outcome, so a test can
kill, restart or swap things on the main thread while requests keep flowing.

    with Traffic.rest(server.url, body, workers=8) as traffic:
        ...                                    # break something
    failures = [o for o in traffic.outcomes if not o.ok]
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
import numpy as np

from mnist_contract.protos import digits_pb2, digits_pb2_grpc

Send = Callable[[], Awaitable[tuple[str, int]]]  # → (outcome, model version or -1)


@dataclass(frozen=True)
class Outcome:
    started: float  # time.monotonic()
    seconds: float
    status: str  # "200", "503", … or a gRPC code name, or the exception class
    version: int

    @property
    def ok(self) -> bool:
        return self.status in ("200", "OK")


@dataclass
class Traffic:
    connect: Callable[[], AbstractAsyncContextManager[Send]]
    workers: int = 8
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    @classmethod
    def rest(
        cls,
        url: str,
        body: bytes,
        workers: int = 8,
        timeout: float = 10,
        headers: dict[str, str] | None = None,
    ) -> Traffic:
        @asynccontextmanager
        async def connect() -> Any:
            limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
            async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:

                async def send() -> tuple[str, int]:
                    r = await client.post(
                        "/v1/digits:classify",
                        content=body,
                        headers={"Content-Type": "application/octet-stream", **(headers or {})},
                    )
                    version = r.json().get("model_version", -1) if r.status_code == 200 else -1
                    return str(r.status_code), version

                yield send

        return cls(connect, workers)

    @classmethod
    def grpc(
        cls, target: str, images: np.ndarray, workers: int = 8, timeout: float = 10
    ) -> Traffic:
        request = digits_pb2.ClassifyRequest()
        for image in images:
            request.images.add(raw=image.tobytes())

        @asynccontextmanager
        async def connect() -> Any:
            async with grpc.aio.insecure_channel(target) as channel:
                stub = digits_pb2_grpc.DigitClassifierStub(channel)

                async def send() -> tuple[str, int]:
                    try:
                        answer = await stub.Classify(request, timeout=timeout)
                    except grpc.aio.AioRpcError as exc:
                        return exc.code().name, -1
                    return "OK", answer.model_version

                yield send

        return cls(connect, workers)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)

    async def _run(self) -> None:
        async with self.connect() as send:
            await asyncio.gather(*(self._worker(send) for _ in range(self.workers)))

    async def _worker(self, send: Send) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                status, version = await send()
            except Exception as exc:  # noqa: BLE001 - a refused connection is an outcome too
                status, version = type(exc).__name__, -1
                await asyncio.sleep(0.01)  # no hot loop against a closed port
            self.outcomes.append(Outcome(started, time.monotonic() - started, status, version))

    def between(self, start: float, end: float = float("inf")) -> list[Outcome]:
        return [o for o in self.outcomes if start <= o.started < end]


def percentiles(outcomes: list[Outcome]) -> dict[str, float]:
    """Count, failures and latency percentiles (ms) of some outcomes, for the figures."""
    ms = np.array([o.seconds * 1000 for o in outcomes]) if outcomes else np.array([np.nan])
    return {
        "requests": len(outcomes),
        "failed": sum(not o.ok for o in outcomes),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(np.max(ms)), 2),
    }


def recovery(outcomes: list[Outcome], fault_at: float) -> dict[str, object]:
    """What clients saw of a fault at ``fault_at`` (time.monotonic()): answers by status, the
    longest time without a successful answer, when the last failure ended (seconds after the
    fault), whether answers came back after it, and the longest any request took."""
    ordered = sorted(outcomes, key=lambda o: o.started + o.seconds)
    failures = [o for o in ordered if not o.ok]
    last_failure = max((o.started + o.seconds for o in failures), default=fault_at)
    answered = [o.started + o.seconds for o in ordered if o.ok]
    marks = [fault_at, *answered]
    gaps = [b - a for a, b in itertools.pairwise(marks)]
    by_status: dict[str, int] = {}
    for o in ordered:
        by_status[o.status] = by_status.get(o.status, 0) + 1
    after = sum(1 for o in ordered if o.ok and o.started >= last_failure)
    return {
        "by_status": by_status,
        "longest_gap_s": round(max(gaps, default=0.0), 2),
        "failures_end_s": round(last_failure - fault_at, 2),
        "recovered": after > 0,
        "answered_after_recovery": after,
        "longest_request_s": round(max((o.seconds for o in ordered), default=0.0), 2),
    }
