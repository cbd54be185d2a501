"""The served model versions: load, warm up, resolve a request's version or label.

The newest numbered folder under ``<model_dir>/mnist/`` is loaded at start. Hidden folders
(``.staging-*``, an export in progress) and folders without a model file are not versions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_serving.batching import BatchConfig, Batcher
from mnist_serving.errors import InvalidInput, NotFound
from mnist_serving.metrics import Metrics
from mnist_serving.runtimes import Runtime, Session, load_runtime
from mnist_serving.settings import MODEL_NAME, Settings
from mnist_serving.warmup import WarmupError, warmup_batches

log = logging.getLogger(__name__)


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
class VersionSpec:
    """What a request asked for: a number, a label, or (both None) the default version."""

    version: int | None = None
    label: str | None = None

    def describe(self) -> str:
        if self.version is not None:
            return f"Specific({MODEL_NAME}, {self.version})"
        if self.label is not None:
            return f"Label({MODEL_NAME}, {self.label})"
        return f"Latest({MODEL_NAME})"


def parse_version(text: str) -> int:
    """A path or field's version string → int, with TF Serving's meaning (positive int64)."""
    if not text.isdigit() or int(text) < 1 or int(text) >= 2**63:
        raise InvalidInput(f"version must be a positive integer, got {text!r}")
    return int(text)


def newest_version_dir(base: Path) -> Path:
    candidates = [p for p in base.iterdir() if p.is_dir() and p.name.isdigit() and int(p.name) > 0]
    if not candidates:
        raise FileNotFoundError(f"no numbered version folder under {base}")
    return max(candidates, key=lambda p: int(p.name))


class ModelStore:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._versions: list[ServedVersion] = []
        self._default: ServedVersion | None = None

    @property
    def ready(self) -> bool:
        """Loaded, warmed, and (for a remote backend) at least one replica available."""
        return self._default is not None and self._default.runtime.healthy

    @property
    def versions(self) -> list[ServedVersion]:
        return sorted(self._versions, key=lambda v: v.version)

    async def load_newest(self) -> ServedVersion:
        if self._settings.backend == "tfserving":
            served = await self._connect()
        else:
            served = await self._load(newest_version_dir(self._settings.model_base))
        self._versions.append(served)
        self._default = served
        self._metrics.model_info.info(
            {
                "version": str(served.version),
                "runtime": served.runtime.name,
                "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(served.loaded_at)),
            }
        )
        self._metrics.model_loaded.set(1)
        return served

    async def close(self) -> None:
        self._metrics.model_loaded.set(0)
        self._default = None
        for served in self._versions:
            await served.batcher.stop()
            await served.runtime.close()
        self._versions.clear()

    def resolve(self, spec: VersionSpec) -> ServedVersion:
        version = spec.version
        if spec.label is not None:
            labels = self._settings.version_labels
            if spec.label not in labels:
                known = ", ".join(sorted(labels)) or "none configured"
                raise NotFound(
                    f"Unrecognized servable version label: {spec.label} (labels: {known})"
                )
            version = labels[spec.label]
        if version is None:
            if self._default is None:
                raise NotFound(f"Servable not found for request: {spec.describe()}")
            return self._default
        served = next((v for v in self._versions if v.version == version), None)
        if served is None:
            raise NotFound(f"Servable not found for request: Specific({MODEL_NAME}, {version})")
        return served

    async def _load(self, path: Path) -> ServedVersion:
        s = self._settings
        started = time.perf_counter()
        runtime = await asyncio.to_thread(load_runtime, s.runtime, path, s.runtime_threads)
        sessions = [runtime.session() for _ in range(s.num_batch_threads)]
        warmups = self._warm_up(path, sessions[0]) if s.warmup else 0
        batcher = await self._batcher(runtime, sessions)
        log.info(
            "loaded %s version %d with %s in %.2fs (%d warm-up requests)",
            MODEL_NAME, runtime.version, runtime.name, time.perf_counter() - started, warmups,
        )  # fmt: skip
        return ServedVersion(path, runtime, batcher, time.time(), warmups)

    async def _connect(self) -> ServedVersion:
        """The TF Serving backend: ready as soon as one replica reports AVAILABLE."""
        from mnist_serving.runtimes.tfserving import TFServingRuntime

        s = self._settings
        runtime = TFServingRuntime(
            s.tfserving_targets,
            s.tfserving_model_name,
            s.tfserving_timeout_ms / 1000,
            s.grpc_max_message_bytes,
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

    @staticmethod
    def _warm_up(path: Path, session: object) -> int:
        """Replay the version's warm-up records; a version without them is warmed on zeros."""
        assert callable(session)
        try:
            batches = warmup_batches(path)
        except (OSError, WarmupError) as exc:
            log.warning("no usable warm-up records in %s (%s); warming up on zeros", path, exc)
            session(np.zeros((1, 28, 28, 1), np.float32))
            return 0
        for signature, images in batches:
            shaped = images.astype(np.float32).reshape(-1, 28, 28, 1)
            probs = session(shaped)
            if probs.shape != (len(shaped), 10):
                raise RuntimeError(f"warm-up ({signature}) answered shape {probs.shape}")
        return len(batches)
