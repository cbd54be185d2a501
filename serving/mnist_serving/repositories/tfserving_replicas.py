"""The model hosted by TF Serving replicas: every batch forwarded over gRPC.

The replicas hold the versions; this repository reports the newest version they serve as the
one available, answers requests pinned to that version (or to a label pointing at it) and
refuses others with TF Serving's NOT_FOUND, as TF Serving itself would. It is ready while at
least one replica reports the model AVAILABLE (:class:`~mnist_serving.runtimes.tfserving_client.
TFServingRuntime` polls them).
"""

from __future__ import annotations

import logging
import time

from mnist_serving.errors import servable_not_found
from mnist_serving.observability.metrics import Metrics
from mnist_serving.repositories.repository import (
    AVAILABLE,
    BatcherFactory,
    ReadyListener,
    ServedVersion,
    VersionSpec,
    VersionStatus,
    announce_versions,
    label_target,
)
from mnist_serving.runtimes.tfserving_client import TFServingRuntime

log = logging.getLogger(__name__)


class TFServingRepository:
    def __init__(
        self,
        runtime: TFServingRuntime,
        labels: dict[str, int],
        *,
        sessions: int,
        make_batcher: BatcherFactory,
        metrics: Metrics,
        on_ready: ReadyListener | None = None,
    ) -> None:
        self._runtime = runtime
        self._labels = dict(labels)
        self._sessions = sessions
        self._make_batcher = make_batcher
        self._metrics = metrics
        self._on_ready = on_ready or (lambda _ready: None)
        self._remote: ServedVersion | None = None

    @property
    def ready(self) -> bool:
        return self._remote is not None and self._runtime.healthy

    @property
    def versions(self) -> list[ServedVersion]:
        return [self._remote] if self._remote is not None else []

    def statuses(self) -> list[VersionStatus]:
        return [VersionStatus(v.version, AVAILABLE) for v in self.versions]

    def status_of(self, spec: VersionSpec) -> VersionStatus:
        return VersionStatus(self.resolve(spec).version, AVAILABLE)

    async def start(self) -> None:
        """Connect; ready as soon as one replica reports the model AVAILABLE."""
        await self._runtime.start()
        log.info("TF Serving targets: %s", self._runtime.describe())
        sessions = [self._runtime.session() for _ in range(self._sessions)]
        batcher = await self._make_batcher(self._runtime, sessions)
        self._remote = ServedVersion(None, self._runtime, batcher, time.time(), 0)
        self._runtime.watch_health(lambda _healthy: self._on_ready(self.ready))
        announce_versions(self._metrics, self._remote, self.statuses())
        self._on_ready(self.ready)

    async def close(self) -> None:
        self._metrics.model_loaded.set(0)
        remote, self._remote = self._remote, None
        self._on_ready(False)
        if remote is not None:
            await remote.batcher.stop()
        await self._runtime.close()

    def shadow_target(self) -> ServedVersion | None:
        """None: the gateway forwards to the one version TF Serving's replicas serve."""
        return None

    def resolve(self, spec: VersionSpec) -> ServedVersion:
        remote = self._remote
        if remote is None:
            raise servable_not_found(spec.describe())
        version = label_target(self._labels, spec.label) if spec.label is not None else spec.version
        if version is not None and version != remote.version:
            raise servable_not_found(VersionSpec(version=version).describe())
        return remote
