"""Whether this gateway should receive traffic, as state that listeners subscribe to.

Ready means the model repository can answer and the gateway is not draining. The repository
reports its side (:meth:`Readiness.set_model_ready`), the gateway's drain the other
(:meth:`Readiness.drain`); gRPC health follows through :meth:`Readiness.subscribe` and
``/readyz`` reads :attr:`Readiness.ready`. Nothing polls.
"""

from __future__ import annotations

from collections.abc import Callable

Listener = Callable[[bool], None]


class Readiness:
    def __init__(self) -> None:
        self._model_ready = False
        self._draining = False
        self._listeners: list[Listener] = []

    @property
    def ready(self) -> bool:
        return self._model_ready and not self._draining

    @property
    def draining(self) -> bool:
        return self._draining

    def set_model_ready(self, ready: bool) -> None:
        before = self.ready
        self._model_ready = ready
        self._notify(before)

    def drain(self) -> None:
        """Not ready from now on: balancers stop sending while requests in progress finish."""
        before = self.ready
        self._draining = True
        self._notify(before)

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(ready)`` now and on every change."""
        self._listeners.append(listener)
        listener(self.ready)

    def _notify(self, before: bool) -> None:
        if self.ready != before:
            for listener in self._listeners:
                listener(self.ready)
