"""Fake runtimes for tests of the core, the repositories and the adapters: no TensorFlow, no
LiteRT, no model file. Injected through :func:`mnist_serving.build.build_gateway`'s ``load``.

    gateway = build_gateway(settings, load=loader())             # answers at once
    gateway = build_gateway(settings, load=loader(delay=0.2))    # every model call takes 0.2 s
    gateway = build_gateway(settings, load=loader(failing={2}))  # version 2 cannot load
    gateway = build_gateway(settings, load=loader(shifted={2}))  # version 2 answers digit + 1

A fake's answer is a function of its input, so tests can check that answers come back to the
request that asked: the predicted digit is the brightest of ten vertical bands of the image.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from mnist_serving.build import build_gateway
from mnist_serving.lifecycle.gateway import Gateway
from mnist_serving.repositories.local import Loader
from mnist_serving.runtimes.loading import LoadedVersion, VersionRejected
from mnist_serving.runtimes.runtime import Session
from mnist_serving.settings import Settings


def answer(images: np.ndarray) -> np.ndarray:
    """[N,28,28,1] → [N,10] probabilities peaking at the brightest of ten column bands."""
    columns = images.reshape(len(images), 28, 28).mean(axis=1)  # [N, 28]
    bands = np.stack(
        [columns[:, (28 * d) // 10 : (28 * (d + 1)) // 10].mean(1) for d in range(10)], 1
    )
    logits = 20.0 * bands
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def digit_image(digit: int) -> np.ndarray:
    """A 28×28 uint8 frame the fakes read as ``digit``: one bright band."""
    frame = np.zeros((28, 28), np.uint8)
    frame[4:24, (28 * digit) // 10 : (28 * (digit + 1)) // 10] = 255
    return frame


class FakeRuntime:
    name = "fake"
    precision = "fp32"
    healthy = True

    def __init__(
        self, version: int, delay: float = 0.0, fail: bool = False, shift: int = 0
    ) -> None:
        self.version = version
        self.delay = delay
        self.fail = fail
        self.shift = shift  # a bad model: the answer for the digit after the right one
        self.calls: list[int] = []  # batch sizes, in order
        self.closed = False

    def session(self) -> Session:
        def run(images: np.ndarray) -> np.ndarray:
            self.calls.append(len(images))
            if self.delay:
                time.sleep(self.delay)
            if self.fail:
                raise RuntimeError("the fake model failed")
            return np.roll(answer(images), self.shift, axis=1)

        return run

    async def close(self) -> None:
        self.closed = True


def loader(
    *,
    delay: float = 0.0,
    fail_calls: bool = False,
    failing: set[int] | None = None,
    shifted: set[int] | None = None,
    delays: dict[int, float] | None = None,
    sessions: int = 1,
    made: list[FakeRuntime] | None = None,
) -> Loader:
    """A version loader making :class:`FakeRuntime` s (each kept in ``made`` when given)."""

    def load(path: Path) -> LoadedVersion:
        version = int(path.name)
        if failing and version in failing:
            raise VersionRejected(f"{path}: cannot load (the fake refuses version {version})")
        slow = (delays or {}).get(version, delay)  # a version of its own speed
        runtime = FakeRuntime(version, slow, fail_calls, int(version in (shifted or ())))
        if made is not None:
            made.append(runtime)
        return LoadedVersion(runtime, [runtime.session() for _ in range(sessions)], 0)

    return load


def version_folders(base: Path, *versions: int) -> Path:
    """``base/mnist/<v>/`` for each version (empty: the fakes need no files); the model dir."""
    for version in versions:
        (base / "mnist" / str(version)).mkdir(parents=True, exist_ok=True)
    return base


def fake_gateway(
    tmp_path: Path, *versions: int, load: Loader | None = None, **settings: Any
) -> Gateway:
    """A gateway over ``versions`` (1 when none) of fake runtimes, built as the server builds
    one; ``settings`` are :class:`Settings` fields."""
    model_dir = version_folders(tmp_path, *(versions or (1,)))
    return build_gateway(Settings(model_dir=model_dir, **settings), load=load or loader())


def sample(gateway: Gateway, name: str, **labels: str) -> float:
    """A metric sample's value in ``gateway``'s registry (0 when the series does not exist)."""
    value = gateway.accounting.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value
