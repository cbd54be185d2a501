"""Model repositories: which versions serve, what each request gets, what TF Serving's status
calls report. One protocol, two implementations, chosen where the gateway is built:

    local.LocalRepository          version folders on disk, run in this process (watcher,
                                   version policy, labels, canary split, hot swaps)
    tfserving.TFServingRepository  the model hosted by TF Serving replicas, forwarded over gRPC

The core only sees :class:`ModelRepository`; a new backend is a new implementation of it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mnist_contract.layout import is_version_name
from mnist_contract.model import MODEL_NAME
from mnist_serving.errors import InvalidInput, NotFound
from mnist_serving.observability.metrics import Metrics
from mnist_serving.runtimes.batching import Batcher
from mnist_serving.runtimes.runtime import Runtime, Session

# TF Serving's ModelVersionStatus.State names, in the order a version passes through them.
LOADING, AVAILABLE, UNLOADING, END = "LOADING", "AVAILABLE", "UNLOADING", "END"
STATES = (LOADING, AVAILABLE, UNLOADING, END)
# Told whether the repository can serve now, each time that may have changed.
ReadyListener = Callable[[bool], None]
# A started batcher over a runtime's sessions (both repositories batch the same way).
BatcherFactory = Callable[[Runtime, list[Session]], Awaitable[Batcher]]


@dataclass
class ServedVersion:
    path: Path | None  # None for a remote backend
    runtime: Runtime
    batcher: Batcher
    loaded_at: float
    warmup_requests: int

    @property
    def version(self) -> int:
        """The version answering; for TF Serving, the newest one its replicas report."""
        return self.runtime.version


@dataclass(frozen=True)
class RolloutOverlay:
    """What a rollout lays over the model config: where ``stable`` points, the candidate and
    the shares it gets (as the ``canary`` and ``shadow`` labels); both versions are kept
    loaded whatever the version policy says."""

    stable: int
    candidate: int | None = None
    canary_weight: float = 0.0
    shadow_weight: float = 0.0

    def labels(self) -> dict[str, int]:
        labels = {"stable": self.stable}
        if self.candidate is not None and self.canary_weight:
            labels["canary"] = self.candidate
        if self.candidate is not None and self.shadow_weight:
            labels["shadow"] = self.candidate
        return labels

    def pinned(self) -> set[int]:
        return {self.stable} | ({self.candidate} if self.candidate is not None else set())


@dataclass(frozen=True)
class VersionStatus:
    version: int
    state: str
    error: str = ""  # why a version ended without serving; empty when all is well


@dataclass(frozen=True)
class VersionSpec:
    """What a request asked for: a number, a label, or (both None) the default version."""

    version: int | None = None
    label: str | None = None

    @classmethod
    def from_text(cls, text: str | None) -> VersionSpec:
        """The digits API's ``version`` option: a number, a label, or empty for the default."""
        if not text:
            return cls()
        if text.isascii() and text.isdigit():
            return cls(version=int(text))
        return cls(label=text)

    @property
    def is_default(self) -> bool:
        return self.version is None and self.label is None

    def describe(self, model: str = MODEL_NAME) -> str:
        """TF Serving's way of naming the request in errors: ``Specific(mnist, 3)``."""
        if self.version is not None:
            return f"Specific({model}, {self.version})"
        if self.label is not None:
            return f"Label({model}, {self.label})"
        return f"Latest({model})"


def parse_version(text: str) -> int:
    """A path or field's version string → int, with TF Serving's meaning (positive int64)."""
    if not is_version_name(text):
        raise InvalidInput(f"version must be a positive integer, got {text!r}")
    return int(text)


class ModelRepository(Protocol):
    """What the core needs of wherever the model lives."""

    async def start(self) -> None:
        """Load (or connect); raise with the reason when nothing can serve."""

    async def close(self) -> None:
        """Stop watching, finish queued work, unload."""

    @property
    def ready(self) -> bool:
        """Something can answer now: a version loaded and warm, or a replica available."""
        ...

    @property
    def versions(self) -> list[ServedVersion]:
        """The versions serving now, oldest first."""
        ...

    def statuses(self) -> list[VersionStatus]:
        """Every version seen, in TF Serving's states (GetModelStatus with no version)."""
        ...

    def status_of(self, spec: VersionSpec) -> VersionStatus:
        """One version's (or label's) state; :class:`NotFound` when it was never seen."""
        ...

    def resolve(self, spec: VersionSpec) -> ServedVersion:
        """The version a request gets: pinned, labelled, or the default (canary share included)."""
        ...

    def shadow_target(self) -> ServedVersion | None:
        """The version this request is also mirrored to (the shadow share), or None."""
        ...


def label_target(labels: dict[str, int], label: str | None) -> int:
    """The version a label points at; TF Serving's NOT_FOUND wording when it is unknown."""
    if label not in labels:
        known = ", ".join(sorted(labels)) or "none configured"
        raise NotFound(f"Unrecognized servable version label: {label} (labels: {known})")
    return labels[label]


def announce_versions(
    metrics: Metrics, default: ServedVersion | None, statuses: list[VersionStatus]
) -> None:
    """Publish what serves: readiness, versions by state, and the default version's info."""
    metrics.model_loaded.set(1 if default else 0)
    for state in STATES:
        metrics.model_versions.labels(state).set(sum(s.state == state for s in statuses))
    if default is not None:
        loaded_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(default.loaded_at))
        metrics.model_info.info(
            {
                "version": str(default.version),
                "runtime": default.runtime.name,
                "precision": default.runtime.precision,
                "loaded_at": loaded_at,
            }
        )
