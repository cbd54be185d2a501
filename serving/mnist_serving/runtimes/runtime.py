"""Runtimes: what turns a float32 [N,28,28,1] batch into [N,10] probabilities.

A runtime loads one version folder; :meth:`Runtime.session` gives a callable that one batching
worker owns (LiteRT interpreters are not thread-safe, so each worker gets its own).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

import numpy as np

# A local session computes in a worker thread; a remote one is a coroutine on the event loop.
Session = Callable[[np.ndarray], np.ndarray] | Callable[[np.ndarray], Awaitable[np.ndarray]]


class Runtime(Protocol):
    name: str
    precision: str  # of the weights and activations the answers come from: int8 or fp32

    @property
    def version(self) -> int: ...

    @property
    def healthy(self) -> bool:
        """False while the runtime cannot answer (a remote backend with no replica up)."""
        ...

    def session(self) -> Session: ...

    async def close(self) -> None: ...


def load_runtime(kind: str, version_dir: Path, threads: int, precision: str = "fp32") -> Runtime:
    """Load ``version_dir`` with the runtime named ``kind``; TensorFlow only for savedmodel.
    ``precision`` chooses LiteRT's file (the SavedModel is float)."""
    if kind == "litert":
        from mnist_serving.runtimes.litert import LiteRTRuntime

        return LiteRTRuntime(version_dir, threads, precision)
    if kind == "savedmodel":
        from mnist_serving.runtimes.savedmodel import SavedModelRuntime

        return SavedModelRuntime(version_dir)
    raise ValueError(f"unknown runtime {kind!r}; choose litert or savedmodel")
