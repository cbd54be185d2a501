"""Runtimes: what turns a float32 [N,28,28,1] batch into [N,10] probabilities.

A runtime loads one version folder; :meth:`Runtime.session` gives a callable that one batching
worker owns (LiteRT interpreters are not thread-safe, so each worker gets its own). Which
runtime serves is chosen where the gateway is built (:func:`mnist_serving.build.runtime_opener`).
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


# Opens one version folder with the runtime the settings chose (the folder → a Runtime).
RuntimeOpener = Callable[[Path], Runtime]
