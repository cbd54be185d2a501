"""Locust users for the MNIST service, reusing the SDK rather than re-implementing protocols.

Point them with the environment variables listed in
:data:`mnist_client.loadtest.ENVIRONMENT` (the compose stack sets them). Loading plain TF
Serving beside the gateway (``MNIST_TFSERVING_REST`` / ``_GRPC``) shows the gateway's overhead.

Request names group results: ``<api> <transport> [<images>]``, e.g. ``digits rest [1]`` or
``v2 grpc [32]``.
"""

from __future__ import annotations

import functools
import os
import time
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import grpc.experimental.gevent as grpc_gevent
import numpy as np
from locust import FastHttpUser, LoadTestShape, User, between, events, task

from mnist_client import MnistClient, MnistError
from mnist_client import _rest as rest_protocol
from mnist_client._codec import to_items
from mnist_client._config import Api

# 512 real MNIST test digits shipped with the package, so an installed wheel can load-test.
PACKAGED_DIGITS = resources.files("mnist_client.loadtest") / "digits.npz"


def _on_locust_init(**_kwargs: Any) -> None:
    # grpcio and gevent must agree on who waits, or the first gRPC call blocks every greenlet;
    # done when Locust starts, not when this module is imported.
    grpc_gevent.init_gevent()


events.init.add_listener(_on_locust_init)


@functools.cache
def digits() -> np.ndarray:
    """The digits the users send: ``MNIST_LOADTEST_DATA`` (an mnist.npz), else the packaged
    ones; read once, when the first user needs them."""
    chosen = os.environ.get("MNIST_LOADTEST_DATA")
    source = Path(chosen) if chosen else PACKAGED_DIGITS
    if not source.is_file():
        raise SystemExit(f"no digits at {source}: set MNIST_LOADTEST_DATA to an mnist.npz")
    with source.open("rb") as stream, np.load(stream) as data:
        return np.asarray(data["x_test"])


BATCH = int(os.environ.get("MNIST_LOADTEST_BATCH", "32"))
TARGET = os.environ.get("MNIST_LOADTEST_TARGET", "gateway")
API: Api = "tfserving" if TARGET == "tfserving" else "digits"


def _pick(rng: np.random.Generator, n: int) -> np.ndarray:
    pool = digits()
    start = int(rng.integers(0, len(pool) - n))
    return pool[start : start + n]


class RestUser(FastHttpUser):
    """REST: the SDK builds each request (same bytes as ``MnistClient``); Locust sends it."""

    wait_time = between(0, 0.01)
    api: Api = API
    rest_url: str | None = None  # None: Locust's --host

    def on_start(self) -> None:
        if self.rest_url:
            self.host = self.rest_url
        self.client_config = MnistClient(self.host or "http://127.0.0.1:8080", api=self.api).config
        self.rng = np.random.default_rng()

    def _send(self, images: np.ndarray) -> None:
        call = rest_protocol.build(to_items(images), 0, self.client_config)
        name = f"{self.api} rest [{len(images)}]"
        with self.client.post(
            call.path,
            data=call.content,  # type: ignore[arg-type]  # bytes are sent as is; the stub says str
            headers=call.headers,
            name=name,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")

    @task(8)
    def one_image(self) -> None:
        self._send(_pick(self.rng, 1))

    @task(1)
    def batch(self) -> None:
        self._send(_pick(self.rng, BATCH))


class GrpcUser(User):
    """An abstract user that times SDK calls and reports them to Locust (``events.request``)."""

    abstract = True
    wait_time = between(0, 0.01)
    api: ClassVar[Api] = API
    grpc_target: ClassVar[str | None] = None

    def on_start(self) -> None:
        target = self.grpc_target or os.environ.get("MNIST_LOADTEST_GRPC")
        if not target:
            host = urlsplit(self.host or "http://127.0.0.1").hostname or "127.0.0.1"
            target = f"{host}:8081"
        self.sdk = MnistClient(f"grpc://{target}", api=self.api, retries=0)
        self.rng = np.random.default_rng()

    def on_stop(self) -> None:
        self.sdk.close()

    def _timed(self, name: str, images: np.ndarray) -> None:
        started = time.perf_counter()
        error: Exception | None = None
        try:
            self.sdk.classify(images)
        except MnistError as exc:
            error = exc
        events.request.fire(
            request_type="grpc",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=error,
            context={},
        )


class GatewayGrpcUser(GrpcUser):
    @task(8)
    def one_image(self) -> None:
        self._timed(f"{self.api} grpc [1]", _pick(self.rng, 1))

    @task(1)
    def batch(self) -> None:
        self._timed(f"{self.api} grpc [{BATCH}]", _pick(self.rng, BATCH))


class V2RestUser(RestUser):
    """The Open Inference Protocol over REST (binary tensors): the gateway's, or any V2
    server's at ``MNIST_LOADTEST_V2_REST`` (Triton, KServe, MLServer)."""

    api: Api = "v2"
    rest_url = os.environ.get("MNIST_LOADTEST_V2_REST")


class V2GrpcUser(GatewayGrpcUser):
    """The Open Inference Protocol over gRPC (raw contents): the gateway's, or any V2 server's
    at ``MNIST_LOADTEST_V2_GRPC``."""

    api: ClassVar[Api] = "v2"
    grpc_target: ClassVar[str | None] = os.environ.get("MNIST_LOADTEST_V2_GRPC")


def _direct_tfserving_users() -> dict[str, Any]:
    """Users aimed at plain TF Serving, present only when its addresses are given."""
    found: dict[str, Any] = {}
    rest = os.environ.get("MNIST_TFSERVING_REST")
    grpc_target = os.environ.get("MNIST_TFSERVING_GRPC")
    if rest:
        found["TFServingRestUser"] = type(
            "TFServingRestUser", (RestUser,), {"api": "tfserving", "rest_url": rest}
        )
    if grpc_target:
        found["TFServingGrpcUser"] = type(
            "TFServingGrpcUser",
            (GatewayGrpcUser,),
            {"api": "tfserving", "grpc_target": grpc_target},
        )
    return found


globals().update(_direct_tfserving_users())


_STEPS = [int(s) for s in os.environ.get("MNIST_LOADTEST_STEPS", "").split(",") if s.strip()]

__all__ = ["GatewayGrpcUser", "RestUser", "V2GrpcUser", "V2RestUser", *_direct_tfserving_users()]

# Locust applies a shape whenever one is defined, so define it only when steps are asked for;
# otherwise --users and --run-time stay in charge.
if _STEPS:

    class StepLoad(LoadTestShape):
        """Users rise in steps (MNIST_LOADTEST_STEPS) to find the knee; stops after the last."""

        steps = _STEPS
        step_seconds = float(os.environ.get("MNIST_LOADTEST_STEP_SECONDS", "20"))

        def tick(self) -> tuple[int, float] | None:
            step = int(self.get_run_time() // self.step_seconds)
            if step >= len(self.steps):
                return None
            return self.steps[step], float(self.steps[step])

    __all__ += ["StepLoad"]
