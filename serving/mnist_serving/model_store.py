"""The served model versions: which are loaded, what each request gets, and hot swaps.

Versions are the numbered folders under ``<model_dir>/mnist/``; hidden folders (``.staging-*``,
an export in progress) are not. A watcher re-scans the folder and the model config file every
``model_poll_seconds``: a version the policy wants is loaded, checked and warmed in a worker
thread (see :mod:`mnist_serving.loader`), then swapped in; one the policy drops is taken out
of rotation first and unloaded once its queue is empty, so no request fails during a swap. A
version that cannot load is refused (state ``END`` with the reason, a log line, a metric) and
is not retried until its folder changes; the versions already serving carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from mnist_serving.batching import BatchConfig, Batcher
from mnist_serving.errors import BackendUnavailable, InvalidInput, NotFound
from mnist_serving.loader import VersionRejected, load_version
from mnist_serving.metrics import Metrics
from mnist_serving.model_config import (
    ModelConfig,
    ModelConfigError,
    VersionPolicy,
    read_model_config,
)
from mnist_serving.runtimes import Runtime, Session
from mnist_serving.settings import MODEL_NAME, Settings

log = logging.getLogger(__name__)
# TF Serving's ModelVersionStatus.State names, in the order a version passes through them.
LOADING, AVAILABLE, UNLOADING, END = "LOADING", "AVAILABLE", "UNLOADING", "END"
_UNREAD = object()


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

    def describe(self) -> str:
        if self.version is not None:
            return f"Specific({MODEL_NAME}, {self.version})"
        if self.label is not None:
            return f"Label({MODEL_NAME}, {self.label})"
        return f"Latest({MODEL_NAME})"


def parse_version(text: str) -> int:
    """A path or field's version string → int, with TF Serving's meaning (positive int64)."""
    if not (text.isascii() and text.isdigit()) or int(text) < 1 or int(text) >= 2**63:
        raise InvalidInput(f"version must be a positive integer, got {text!r}")
    return int(text)


def version_dirs(base: Path) -> dict[int, Path]:
    """Numbered version folders under ``base`` (missing base: none)."""
    try:
        entries = list(base.iterdir())
    except OSError:
        return {}
    return {
        int(p.name): p
        for p in entries
        if p.name.isascii() and p.name.isdigit() and int(p.name) > 0 and p.is_dir()
    }


def _fingerprint(path: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and mtimes of a folder's files: a refused version is retried when it changes."""
    try:
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return tuple(
            (str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns) for p in files
        )
    except OSError:
        return ()


class ModelStore:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._served: dict[int, ServedVersion] = {}
        self._status: dict[int, VersionStatus] = {}
        self._refused: dict[int, tuple[tuple[str, int, int], ...]] = {}
        self._remote: ServedVersion | None = None
        self.config = ModelConfig(
            VersionPolicy.parse(settings.version_policy),
            dict(settings.version_labels),
            settings.canary_weight,
        )
        self._config_stamp: object = _UNREAD
        self._canary_credit = 0.0
        self._watcher: asyncio.Task[None] | None = None
        self._sync_lock = asyncio.Lock()

    # -- state ------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Loaded, warmed, and (for a remote backend) at least one replica available."""
        if self._remote is not None:
            return self._remote.runtime.healthy
        return bool(self._served)

    @property
    def versions(self) -> list[ServedVersion]:
        """The versions serving now, oldest first."""
        if self._remote is not None:
            return [self._remote]
        return [self._served[v] for v in sorted(self._served)]

    def statuses(self) -> list[VersionStatus]:
        """Every version seen: serving, loading, unloading, unloaded or refused."""
        if self._remote is not None:
            return [VersionStatus(self._remote.version, AVAILABLE)]
        return [self._status[v] for v in sorted(self._status)]

    def status_of(self, spec: VersionSpec) -> VersionStatus:
        if spec.version is None and spec.label is None:
            raise ValueError("status_of needs a version or a label")
        if self._remote is not None:
            return VersionStatus(self.resolve(spec).version, AVAILABLE)
        version = spec.version if spec.version is not None else self._label_target(spec.label)
        if version not in self._status:
            raise NotFound(f"Servable not found for request: Specific({MODEL_NAME}, {version})")
        return self._status[version]

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to TF Serving, or load the versions the policy wants and start watching."""
        if self._settings.backend == "tfserving":
            self._remote = await self._connect()
            self._announce()
            return
        await self.sync()
        if not self._served:
            problems = "; ".join(s.error for s in self._status.values() if s.error)
            raise RuntimeError(
                f"no version under {self._settings.model_base} could be loaded"
                + (f": {problems}" if problems else "")
            )
        if self._settings.model_poll_seconds > 0:
            self._watcher = asyncio.create_task(self._watch(), name="model-watcher")

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        self._metrics.model_loaded.set(0)
        served = [*self._served.values(), *([self._remote] if self._remote else [])]
        self._served.clear()
        self._remote = None
        for version in served:
            await version.batcher.stop()
            await version.runtime.close()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._settings.model_poll_seconds)
            try:
                await self.sync()
            except Exception:  # the watcher must outlive any one bad pass
                log.exception("model watcher pass failed; retrying in %.1f s",
                              self._settings.model_poll_seconds)  # fmt: skip

    async def sync(self) -> None:
        """One pass: re-read the config if it changed, load wanted versions, retire the rest."""
        async with self._sync_lock:
            self._reload_config()
            folders = version_dirs(self._settings.model_base)
            for version in [v for v in self._refused if v not in folders]:
                del self._refused[version]
            tried: set[int] = set()
            while True:
                # A refused version is retried when its files change (a copy that finished),
                # at most once per pass; the policy then falls back to the next newest.
                loadable = {
                    v: p
                    for v, p in folders.items()
                    if v not in self._refused
                    or (v not in tried and self._refused[v] != _fingerprint(p))
                }
                wanted = self.config.policy.select(loadable)
                missing = sorted(wanted - set(self._served), reverse=True)  # newest first
                if not missing:
                    break
                for version in missing:
                    tried.add(version)
                    await self._load(version, loadable[version])
            for version in sorted(set(self._served) - wanted):
                if len(self._served) == 1:
                    log.warning(
                        "version %d is no longer wanted (folder gone or policy changed) but it "
                        "is the only one serving; keeping it", version,
                    )  # fmt: skip
                    break
                await self._retire(version)
            self._check_labels()
            self._announce()

    def _reload_config(self) -> None:
        path = self._settings.model_config_file
        if path is None:
            return
        try:
            # The content, not the mtime: two edits within one timestamp tick still count.
            stamp: bytes | None = path.read_bytes()
        except OSError:
            stamp = None
        if stamp == self._config_stamp:
            return
        self._config_stamp = stamp
        try:
            config = read_model_config(path)
        except ModelConfigError as exc:
            self._metrics.model_config_errors.inc()
            log.error("%s; keeping the previous config", exc)
            return
        if config != self.config:
            log.info(
                "model config: policy %s, labels %s, canary weight %g",
                config.policy.describe(), config.labels or "none", config.canary_weight,
            )  # fmt: skip
        self.config = config

    async def _load(self, version: int, path: Path) -> None:
        s = self._settings
        self._status[version] = VersionStatus(version, LOADING)
        started = time.perf_counter()
        try:
            loaded = await asyncio.to_thread(
                load_version, path, s.runtime, s.runtime_threads, s.num_batch_threads, s.warmup
            )
        except VersionRejected as exc:
            self._refused[version] = _fingerprint(path)
            self._status[version] = VersionStatus(version, END, str(exc))
            self._metrics.model_load_failures.inc()
            log.error("refused version %d: %s", version, exc)
            return
        batcher = await self._batcher(loaded.runtime, loaded.sessions)
        self._served[version] = ServedVersion(
            path, loaded.runtime, batcher, time.time(), loaded.warmup_requests
        )
        self._status[version] = VersionStatus(version, AVAILABLE)
        self._refused.pop(version, None)
        log.info(
            "loaded %s version %d with %s in %.2fs (%d warm-up requests)",
            MODEL_NAME, version, loaded.runtime.name, time.perf_counter() - started,
            loaded.warmup_requests,
        )  # fmt: skip

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
        default = self._default()
        self._metrics.model_loaded.set(1 if default else 0)
        for state in (LOADING, AVAILABLE, UNLOADING, END):
            count = sum(s.state == state for s in self.statuses())
            self._metrics.model_versions.labels(state).set(count)
        if default is not None:
            self._metrics.model_info.info(
                {
                    "version": str(default.version),
                    "runtime": default.runtime.name,
                    "loaded_at": time.strftime(
                        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(default.loaded_at)
                    ),
                }
            )

    # -- requests ---------------------------------------------------------------------------

    def resolve(self, spec: VersionSpec) -> ServedVersion:
        if self._remote is not None:
            return self._resolve_remote(spec)
        if spec.label is not None:
            return self._served_or_explain(
                self._label_target(spec.label), f"label {spec.label!r} → "
            )
        if spec.version is not None:
            return self._served_or_explain(spec.version, "")
        return self._pick_default()

    def _pick_default(self) -> ServedVersion:
        """``stable`` (or the newest) for unpinned requests, with the canary's weighted share."""
        weight = self.config.canary_weight
        canary = self._served.get(self.config.labels.get("canary", 0)) if weight else None
        if canary is not None:
            # Deterministic weighting: over any run of requests the canary gets its share
            # within one request, not "about" its share as a coin flip would give.
            self._canary_credit += weight
            if self._canary_credit >= 1.0:
                self._canary_credit -= 1.0
                return canary
        default = self._default()
        if default is None:
            raise BackendUnavailable(f"model {MODEL_NAME} is still loading", retry_after=1)
        return default

    def _default(self) -> ServedVersion | None:
        if self._remote is not None:
            return self._remote
        stable = self._served.get(self.config.labels.get("stable", 0))
        if stable is not None:
            return stable
        return self._served[max(self._served)] if self._served else None

    def _label_target(self, label: str | None) -> int:
        labels = self.config.labels
        if label not in labels:
            known = ", ".join(sorted(labels)) or "none configured"
            raise NotFound(f"Unrecognized servable version label: {label} (labels: {known})")
        return labels[label]

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
        raise NotFound(
            f"Servable not found for request: {prefix}Specific({MODEL_NAME}, {version}){state}"
        )

    def _resolve_remote(self, spec: VersionSpec) -> ServedVersion:
        assert self._remote is not None
        version = self._label_target(spec.label) if spec.label is not None else spec.version
        if version is not None and version != self._remote.version:
            raise NotFound(f"Servable not found for request: Specific({MODEL_NAME}, {version})")
        return self._remote

    # -- construction -----------------------------------------------------------------------

    async def _connect(self) -> ServedVersion:
        """The TF Serving backend: ready as soon as one replica reports AVAILABLE."""
        from mnist_serving.runtimes.tfserving import TFServingRuntime

        s = self._settings
        runtime = TFServingRuntime(
            s.tfserving_targets,
            s.tfserving_model_name,
            s.tfserving_timeout_ms / 1000,
            s.grpc_max_message_bytes,
            self._metrics,
        )
        await runtime.start()
        log.info("TF Serving targets: %s", runtime.describe())
        sessions = [runtime.session() for _ in range(s.num_batch_threads)]
        return ServedVersion(None, runtime, await self._batcher(runtime, sessions), time.time(), 0)

    async def _batcher(self, runtime: Runtime, sessions: list[Session]) -> Batcher:
        s = self._settings
        config = BatchConfig(
            s.max_batch_size, s.batch_timeout_micros, s.max_enqueued_batches, s.num_batch_threads
        )
        batcher = Batcher(sessions, config, self._metrics, runtime.name)
        await batcher.start()
        return batcher
