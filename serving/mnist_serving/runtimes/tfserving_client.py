"""``backend=tfserving``: forward each batch to TF Serving replicas over gRPC.

Targets are balanced round-robin per call. A watcher polls every target's ``GetModelStatus``
twice a second (all on the event loop, with ``grpc.aio``: no thread hop per call); a target
that fails a call or a poll leaves the rotation at once and returns
when it reports ``AVAILABLE`` again. With no healthy target a call fails fast with
:class:`BackendUnavailable` instead of queueing behind a dead replica. Requests carry raw
``tensor_content`` built from the numpy buffer; answers are read from either encoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import numpy as np

from mnist_contract.model import INPUT_NAME, SERVING_DEFAULT
from mnist_contract.protos import tensorflow_serving_pb2 as tfs
from mnist_contract.protos import tensorflow_serving_pb2_grpc as tfs_grpc
from mnist_contract.tensors import TensorError, array_to_tensor, tensor_to_array
from mnist_serving.errors import (
    BackendUnavailable,
    DeadlineExceeded,
    InvalidInput,
    NotFound,
    RateLimited,
    ServingError,
)
from mnist_serving.observability.metrics import Metrics
from mnist_serving.observability.tracing import Tracing
from mnist_serving.runtimes.runtime import Session

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5
_AVAILABLE = tfs.ModelVersionStatus.AVAILABLE


@dataclass
class Target:
    address: str
    channel: grpc.aio.Channel
    predict: tfs_grpc.PredictionServiceStub
    status: tfs_grpc.ModelServiceStub
    healthy: bool = False
    version: int = 0


def backend_error(exc: grpc.RpcError, target: str) -> ServingError:
    """A TF Serving status → our typed error, naming the target."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    detail = exc.details() if hasattr(exc, "details") else str(exc)
    message = f"TF Serving at {target}: {detail}"
    mapping: dict[grpc.StatusCode, type[ServingError]] = {
        grpc.StatusCode.INVALID_ARGUMENT: InvalidInput,
        grpc.StatusCode.NOT_FOUND: NotFound,
        grpc.StatusCode.RESOURCE_EXHAUSTED: RateLimited,
        grpc.StatusCode.UNAVAILABLE: BackendUnavailable,
        grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    }
    return mapping.get(code, ServingError)(message)


PREDICT_NAME = "tensorflow.serving.PredictionService/Predict"


class TFServingRuntime:
    name = "tfserving"
    precision = "fp32"  # the SavedModel

    def __init__(
        self,
        targets: list[str],
        model_name: str,
        timeout_s: float,
        max_message_bytes: int,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self._options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            # Reconnect quickly after a replica restarts (gRPC's default backoff reaches 120 s).
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
            # A dns:/// target naming a headless Service balances per call over every pod.
            ("grpc.lb_policy_name", "round_robin"),
        ]
        self.addresses = list(targets)
        self.model_name = model_name
        self.timeout_s = timeout_s
        self._metrics = metrics
        self._tracing = tracing or Tracing()
        self._targets: list[Target] = []
        self._turn = itertools.count()
        self._watcher: asyncio.Task[None] | None = None
        self._health_listeners: list[Callable[[bool], None]] = []

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Open a channel per target (inside the running loop, which grpc.aio binds to), poll
        them once, then keep polling."""
        for address in self.addresses:
            channel = grpc.aio.insecure_channel(address, options=self._options)
            self._targets.append(
                Target(
                    address,
                    channel,
                    tfs_grpc.PredictionServiceStub(channel),
                    tfs_grpc.ModelServiceStub(channel),
                )
            )
        await self.refresh()
        self._watcher = asyncio.create_task(self._watch(), name="tfserving-watch")

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for target in self._targets:
            await target.channel.close()

    @property
    def healthy(self) -> bool:
        return any(t.healthy for t in self._targets)

    @property
    def version(self) -> int:
        return max((t.version for t in self._targets if t.healthy), default=0)

    def watch_health(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(healthy)`` whenever the runtime's overall health may have changed."""
        self._health_listeners.append(listener)

    def describe(self) -> dict[str, bool]:
        return {t.address: t.healthy for t in self._targets}

    async def refresh(self) -> None:
        await asyncio.gather(*(self._poll(target) for target in self._targets))

    async def _poll(self, target: Target) -> None:
        request = tfs.GetModelStatusRequest(model_spec=tfs.ModelSpec(name=self.model_name))
        try:
            answer = await target.status.GetModelStatus(request, timeout=POLL_SECONDS)
        except grpc.RpcError:
            self._mark(target, False, 0)
            return
        available = [s.version for s in answer.model_version_status if s.state == _AVAILABLE]
        self._mark(target, bool(available), max(available, default=0))

    def _mark(self, target: Target, healthy: bool, version: int) -> None:
        changed = healthy != target.healthy
        if changed:
            log.warning("TF Serving target %s is %s", target.address, "back" if healthy else "down")
        target.healthy, target.version = healthy, version
        if self._metrics is not None:
            self._metrics.backend_up.labels(target.address).set(1 if healthy else 0)
        if changed:
            for listener in self._health_listeners:
                listener(self.healthy)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            await self.refresh()

    # -- inference ------------------------------------------------------------------------

    def session(self) -> Session:
        return self._predict

    async def _predict(self, images: np.ndarray) -> np.ndarray:
        deadline = time.monotonic() + self.timeout_s
        request = tfs.PredictRequest(
            model_spec=tfs.ModelSpec(name=self.model_name, signature_name=SERVING_DEFAULT.name)
        )
        request.inputs[INPUT_NAME].CopyFrom(
            array_to_tensor(np.ascontiguousarray(images, np.float32))
        )
        backoff = 0.01
        last: ServingError | None = None
        while True:
            target = self._next_healthy()
            if target is None:
                raise last or BackendUnavailable(
                    f"no TF Serving target is available ({', '.join(self.describe())})",
                    retry_after=1,
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineExceeded(f"TF Serving did not answer within {self.timeout_s:.1f} s")
            try:
                # A CLIENT span with its context in the metadata: TF Serving (or a gateway in
                # front of it) continues the same trace.
                with self._tracing.client_span(PREDICT_NAME, target.address) as metadata:
                    answer = await target.predict.Predict(
                        request, timeout=remaining, metadata=metadata
                    )
            except grpc.RpcError as exc:
                error = backend_error(exc, target.address)
                if not isinstance(error, BackendUnavailable):
                    raise error from None
                self._mark(
                    target, False, target.version
                )  # out of rotation until it polls AVAILABLE
                last = error
                await asyncio.sleep(min(backoff, max(0.0, deadline - time.monotonic())))
                backoff *= 2
                continue
            try:
                return tensor_to_array(answer.outputs[SERVING_DEFAULT.output]).astype(np.float32)
            except (KeyError, TensorError) as exc:
                raise ServingError(f"TF Serving at {target.address} answered badly: {exc}") from exc

    def _next_healthy(self) -> Target | None:
        for _ in range(len(self._targets)):
            target = self._targets[next(self._turn) % len(self._targets)]
            if target.healthy:
                return target
        return None
