"""Version folders on disk, served in this process: what is loaded, what each request gets.

Versions are the numbered folders under ``<model_dir>/mnist/`` (:mod:`mnist_contract.layout`).
A watcher re-scans the folder and the model config file every ``poll_seconds``: a version the
policy wants is loaded, checked and warmed in a worker thread (the injected ``load``, normally
:func:`mnist_serving.runtimes.loading.load_version`), then swapped in; one the policy drops is taken out
of rotation first and unloaded once its queue is empty, so no request fails during a swap. A
version that cannot load is refused (state ``END`` with the reason, a log line, a metric) and
is not retried until its folder changes; the versions already serving carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from mnist_contract.layout import version_dirs
from mnist_contract.model import MODEL_NAME
from mnist_serving.errors import BackendUnavailable, StartupError, servable_not_found
from mnist_serving.model_config import (
    ModelConfig,
    ModelConfigError,
    parse_model_config,
)
from mnist_serving.observability.metrics import Metrics
from mnist_serving.repositories.repository import (
    AVAILABLE,
    END,
    LOADING,
    UNLOADING,
    BatcherFactory,
    ReadyListener,
    RolloutOverlay,
    ServedVersion,
    VersionSpec,
    VersionStatus,
    announce_versions,
    label_target,
)
from mnist_serving.runtimes.loading import LoadedVersion, VersionRejected
from mnist_serving.shared_state import CanaryCredit

log = logging.getLogger(__name__)
Fingerprint = tuple[tuple[str, int, int], ...]
# Load one version folder (in a worker thread): raises VersionRejected when it cannot serve.
Loader = Callable[[Path], LoadedVersion]


@dataclass(frozen=True)
class ConfigSource:
    """The model config as start-up read it: settings' values, or a file and its bytes."""

    config: ModelConfig
    path: Path | None = None
    content: bytes | None = None


def fingerprint(path: Path) -> Fingerprint:
    """Names, sizes and mtimes of a folder's files: a refused version is retried when it changes."""
    try:
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return tuple(
            (str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns) for p in files
        )
    except OSError:
        return ()


class LocalRepository:
    def __init__(
        self,
        base: Path,
        source: ConfigSource,
        *,
        load: Loader,
        make_batcher: BatcherFactory,
        metrics: Metrics,
        poll_seconds: float = 2.0,
        on_ready: ReadyListener | None = None,
        canary: CanaryCredit | None = None,
    ) -> None:
        self._base = base
        self._config_path = source.path
        self._config_stamp = source.content
        self._file_config = source.config  # as the settings or the file say
        self._overlay: RolloutOverlay | None = None
        self.config = source.config  # what is in force: the file's, with a rollout laid over
        self._load_version = load
        self._make_batcher = make_batcher
        self._metrics = metrics
        self._poll_seconds = poll_seconds
        self._on_ready = on_ready or (lambda _ready: None)
        self._served: dict[int, ServedVersion] = {}
        self._status: dict[int, VersionStatus] = {}
        self._refused: dict[int, Fingerprint] = {}
        self._canary = canary or CanaryCredit()
        self._shadow = CanaryCredit()  # this worker's own share: mirrors need no exact split
        self._watcher: asyncio.Task[None] | None = None
        self._sync_lock = asyncio.Lock()

    # -- state ------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return bool(self._served)

    @property
    def versions(self) -> list[ServedVersion]:
        return [self._served[v] for v in sorted(self._served)]

    def statuses(self) -> list[VersionStatus]:
        return [self._status[v] for v in sorted(self._status)]

    def status_of(self, spec: VersionSpec) -> VersionStatus:
        version = spec.version if spec.version is not None else self._label_target(spec.label)
        if version not in self._status:
            raise servable_not_found(VersionSpec(version=version).describe())
        return self._status[version]

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the versions the policy wants and start watching for changes."""
        await self.sync()
        if not self._served:
            problems = "; ".join(s.error for s in self._status.values() if s.error)
            raise StartupError(
                f"no version under {self._base} could be loaded"
                + (f": {problems}" if problems else "")
            )
        if self._poll_seconds > 0:
            self._watcher = asyncio.create_task(self._watch(), name="model-watcher")

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        self._metrics.model_loaded.set(0)
        served = list(self._served.values())
        self._served.clear()
        self._on_ready(False)
        for version in served:
            await version.batcher.stop()
            await version.runtime.close()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._poll_seconds)
            try:
                await self.sync()
            except Exception:  # the watcher must outlive any one bad pass
                log.exception("model watcher pass failed; retrying in %.1f s", self._poll_seconds)

    async def sync(self) -> None:
        """One pass: re-read the config if it changed, load wanted versions, retire the rest."""
        async with self._sync_lock:
            self._reload_config()
            folders = version_dirs(self._base)
            for version in [v for v in self._refused if v not in folders]:
                del self._refused[version]
            wanted = await self._load_wanted(folders)
            await self._retire_unwanted(wanted)
            self._check_labels()
            self._announce()

    async def _load_wanted(self, folders: dict[int, Path]) -> set[int]:
        """Load what the policy wants; a refused version is retried when its files change (a
        copy that finished), at most once per pass, and the policy then falls back to the next
        newest. Returns the versions wanted in the end."""
        tried: set[int] = set()
        while True:
            loadable = {
                v: p
                for v, p in folders.items()
                if v not in self._refused or (v not in tried and self._refused[v] != fingerprint(p))
            }
            wanted = self.config.policy.select(loadable) | (self._pinned() & set(loadable))
            missing = sorted(wanted - set(self._served), reverse=True)  # newest first
            if not missing:
                return wanted
            for version in missing:
                tried.add(version)
                await self._load(version, loadable[version])

    async def _retire_unwanted(self, wanted: set[int]) -> None:
        for version in sorted(set(self._served) - wanted):
            if len(self._served) == 1:
                log.warning(
                    "version %d is no longer wanted (folder gone or policy changed) but it "
                    "is the only one serving; keeping it",
                    version,
                )
                return
            await self._retire(version)

    def _reload_config(self) -> None:
        if self._config_path is None:
            return
        try:
            # The content, not the mtime: two edits within one timestamp tick still count.
            stamp: bytes | None = self._config_path.read_bytes()
        except OSError:
            stamp = None
        if stamp == self._config_stamp:
            return
        self._config_stamp = stamp
        try:
            if stamp is None:
                raise ModelConfigError(f"cannot read model config {self._config_path}")
            config = parse_model_config(stamp, self._config_path)
        except ModelConfigError as exc:
            self._metrics.model_config_errors.inc()
            log.error("%s; keeping the previous config", exc)
            return
        if config != self._file_config:
            log.info(
                "model config: policy %s, labels %s, canary weight %g, shadow weight %g",
                config.policy.describe(),
                config.labels or "none",
                config.canary_weight,
                config.shadow_weight,
            )
        self._file_config = config
        self.config = self._effective()

    def apply_rollout(self, overlay: RolloutOverlay | None) -> None:
        """Lay a rollout's labels and shares over the model config, from the next request on
        (the versions it pins are loaded by the next pass, if they are not already)."""
        self._overlay = overlay
        self.config = self._effective()

    def _effective(self) -> ModelConfig:
        overlay, config = self._overlay, self._file_config
        if overlay is None:
            return config
        labels = {
            name: version
            for name, version in config.labels.items()
            if name not in ("stable", "canary", "shadow")
        }
        return replace(
            config,
            labels={**labels, **overlay.labels()},
            canary_weight=overlay.canary_weight,
            shadow_weight=overlay.shadow_weight,
        )

    def _pinned(self) -> set[int]:
        return self._overlay.pinned() if self._overlay is not None else set()

    async def _load(self, version: int, path: Path) -> None:
        self._status[version] = VersionStatus(version, LOADING)
        started = time.perf_counter()
        try:
            loaded = await asyncio.to_thread(self._load_version, path)
        except VersionRejected as exc:
            self._refused[version] = fingerprint(path)
            self._status[version] = VersionStatus(version, END, str(exc))
            self._metrics.model_load_failures.inc()
            log.error("refused version %d: %s", version, exc)
            return
        batcher = await self._make_batcher(loaded.runtime, loaded.sessions)
        self._served[version] = ServedVersion(
            path, loaded.runtime, batcher, time.time(), loaded.warmup_requests
        )
        self._status[version] = VersionStatus(version, AVAILABLE)
        self._refused.pop(version, None)
        log.info(
            "loaded %s version %d with %s in %.2fs (%d warm-up requests)",
            MODEL_NAME,
            version,
            loaded.runtime.name,
            time.perf_counter() - started,
            loaded.warmup_requests,
        )

    async def _retire(self, version: int) -> None:
        """Out of rotation at once; unloaded when the requests already queued on it are done."""
        served = self._served.pop(version)
        self._status[version] = VersionStatus(version, UNLOADING)
        await served.batcher.drain()
        await served.runtime.close()
        self._status[version] = VersionStatus(version, END)
        log.info("unloaded %s version %d", MODEL_NAME, version)

    def _check_labels(self) -> None:
        for label, version in self.config.labels.items():
            if version not in self._served:
                log.warning("label %r points at version %d, which is not serving", label, version)

    def _announce(self) -> None:
        announce_versions(self._metrics, self._default(), self.statuses())
        self._on_ready(self.ready)

    # -- requests ---------------------------------------------------------------------------

    def resolve(self, spec: VersionSpec) -> ServedVersion:
        if spec.label is not None:
            version = self._label_target(spec.label)
            return self._served_or_explain(version, f"label {spec.label!r} → ")
        if spec.version is not None:
            return self._served_or_explain(spec.version, "")
        return self._pick_default()

    def _pick_default(self) -> ServedVersion:
        """``stable`` (or the newest) for unpinned requests, with the canary's weighted share."""
        weight = self.config.canary_weight
        canary = self._served.get(self.config.labels.get("canary", 0)) if weight else None
        if canary is not None and self._canary.take(weight):
            return canary
        default = self._default()
        if default is None:
            raise BackendUnavailable(f"model {MODEL_NAME} is still loading", retry_after=1)
        return default

    def shadow_target(self) -> ServedVersion | None:
        weight = self.config.shadow_weight
        if not weight:
            return None
        target = self._served.get(self.config.labels.get("shadow", 0))
        return target if target is not None and self._shadow.take(weight) else None

    def _default(self) -> ServedVersion | None:
        stable = self._served.get(self.config.labels.get("stable", 0))
        if stable is not None:
            return stable
        return self._served[max(self._served)] if self._served else None

    def _label_target(self, label: str | None) -> int:
        return label_target(self.config.labels, label)

    def _served_or_explain(self, version: int, prefix: str) -> ServedVersion:
        served = self._served.get(version)
        if served is not None:
            return served
        status = self._status.get(version)
        state = (
            f" (state {status.state}{': ' + status.error if status.error else ''})"
            if status
            else ""
        )
        raise servable_not_found(f"{prefix}{VersionSpec(version=version).describe()}{state}")
