"""Where a gateway is put together: settings → checked files → metrics → repository →
accounting and core → adapters → :class:`~mnist_serving.lifecycle.gateway.Gateway`. The implementations are chosen here and
nowhere else (which repository, which runtime, how batches are formed)::

    gateway = build_gateway(Settings(model_dir=Path("models")))
    exit_code = await gateway.serve()     # or: async with gateway.model_loaded(): ... ASGI
"""

from __future__ import annotations

import asyncio
import functools

from prometheus_client import CollectorRegistry

from mnist_serving.adapters.grpc.server import GrpcServer
from mnist_serving.adapters.rest.app import create_app
from mnist_serving.adapters.rest.connections import ConnectionGuard
from mnist_serving.core.access_control import AccessControl
from mnist_serving.core.accounting import RequestAccounting
from mnist_serving.core.admission import Admission
from mnist_serving.core.drift import DriftLimits, DriftMonitor, references_of
from mnist_serving.core.inference import InferenceCore
from mnist_serving.core.readiness import Readiness
from mnist_serving.core.rollout_driver import RolloutDriver, RolloutStore, state_file
from mnist_serving.core.shadow import ShadowTraffic
from mnist_serving.lifecycle.cpus import plan, usable_cpus
from mnist_serving.lifecycle.gateway import Gateway
from mnist_serving.lifecycle.preflight import StartupParts, prepare
from mnist_serving.observability.access_log import AccessLog, LineSink
from mnist_serving.observability.collectors import DriftGauges
from mnist_serving.observability.input_window import InputWindow
from mnist_serving.observability.metrics import Metrics, create_metrics
from mnist_serving.observability.multiprocess import worker_metrics
from mnist_serving.observability.recent_traffic import RecentTraffic
from mnist_serving.observability.samples import SampleWriter
from mnist_serving.observability.tracing import Tracing
from mnist_serving.repositories.local import Loader, LocalRepository
from mnist_serving.repositories.repository import BatcherFactory, ModelRepository
from mnist_serving.runtimes.batching import BatchConfig, Batcher, Observer
from mnist_serving.runtimes.loading import load_version
from mnist_serving.runtimes.runtime import Runtime, RuntimeOpener, Session
from mnist_serving.settings import Settings
from mnist_serving.shared_state import CanaryCredit, GatewayShare


def build_gateway(
    settings: Settings,
    *,
    registry: CollectorRegistry | None = None,
    load: Loader | None = None,
    tracing: Tracing | None = None,
    share: GatewayShare | None = None,
    access_sink: LineSink | None = None,
) -> Gateway:
    """A gateway for ``settings``. ``load`` replaces the version loader (a test's fake
    runtime); ``registry`` the metrics registry (a fresh one per gateway by default);
    ``tracing`` the tracer (by default as the ``OTEL_*`` environment says); ``share``, for
    one worker process among several, what it shares with the others; ``access_sink``, where
    access lines go when the caller owns the process's logging (:func:`configure_logging`),
    else the ``mnist_serving.access`` logger."""
    parts = prepare(settings)
    folder = share.folder if share is not None else None
    metrics = worker_metrics(folder) if folder is not None else create_metrics(registry)
    readiness = Readiness()
    tracing = tracing or Tracing.from_environment()
    canary = CanaryCredit(share.canary) if share is not None else None
    window = InputWindow(shared_dir=folder) if settings.drift_window_images else None
    repository = build_repository(
        settings, parts, metrics, readiness, load, tracing, canary, window
    )
    buckets = share.buckets if share is not None else None
    access = AccessControl(
        parts.keys,
        settings.rate_limit_per_second,
        settings.rate_limit_burst,
        buckets,
        key_file=settings.api_keys_file,
        inline=settings.api_keys,
        on_error=metrics.api_key_file_errors.inc,
        scopes=parts.scopes,
    )
    admission = Admission(settings.max_in_flight_requests, settings.queue_target_ms / 1000 or None)
    accounting = RequestAccounting(
        settings,
        metrics,
        access,
        admission,
        tracing,
        RecentTraffic(shared_dir=folder),
        AccessLog(settings.access_log, sink=access_sink),
    )
    samples = sample_writer(settings, metrics)
    shadow = ShadowTraffic(metrics, admission)
    core = InferenceCore(
        settings, metrics, repository, admission, readiness, tracing, samples, shadow
    )
    drift = drift_monitor(settings, window, repository, metrics)
    rollout = rollout_driver(settings, repository, metrics, share)
    app = create_app(core, accounting, metrics, settings, drift, rollout)
    grpc = GrpcServer(core, accounting, settings, readiness) if settings.grpc_port >= 0 else None
    door, shared = rest_door(settings, metrics), share is not None
    return Gateway(
        settings, core, accounting, app, grpc, parts.tls, door, rollout, shared_ports=shared
    )


def rollout_driver(
    settings: Settings, repository: ModelRepository, metrics: Metrics, share: GatewayShare | None
) -> RolloutDriver | None:
    """With ``--rollout auto``: the rollout, decided by the first worker (or the only one)."""
    if settings.rollout != "auto" or not isinstance(repository, LocalRepository):
        return None
    store = RolloutStore(state_file(settings.model_config_file, settings.model_dir))
    decides = share is None or share.worker == 0
    return RolloutDriver(store, repository, metrics, decides=decides)


def rest_door(settings: Settings, metrics: Metrics) -> type[asyncio.Protocol]:
    """The REST server's connection protocol: uvicorn's, guarded against slow clients."""
    guard = ConnectionGuard(
        settings.header_timeout_seconds,
        settings.max_connections,
        metrics,
        client_cert_required=(
            settings.tls_client_ca_file is not None and settings.tls_client_auth == "required"
        ),
    )
    return guard.protocol()


def sample_writer(settings: Settings, metrics: Metrics) -> SampleWriter | None:
    """The --sample-dir writer, counting into the metrics; None when no folder is given."""
    if settings.sample_dir is None:
        return None
    return SampleWriter(
        settings.sample_dir,
        settings.sample_rate,
        settings.sample_below_confidence,
        int(settings.sample_max_mb * 1024 * 1024),
        on_drop=lambda reason, n: metrics.samples_dropped.labels(reason).inc(n),
        on_write=metrics.samples_written.inc,
    )


def drift_monitor(
    settings: Settings, window: InputWindow | None, repository: ModelRepository, metrics: Metrics
) -> DriftMonitor:
    """The drift score over ``window`` against the serving version's reference, also read by
    every scrape (its gauges)."""
    limits = DriftLimits(
        settings.drift_window_images, settings.drift_max_age_seconds, settings.drift_threshold
    )
    monitor = DriftMonitor(window, references_of(repository), limits)
    metrics.exposition.register(DriftGauges(monitor.report))
    return monitor


def build_repository(
    settings: Settings,
    parts: StartupParts,
    metrics: Metrics,
    readiness: Readiness,
    load: Loader | None = None,
    tracing: Tracing | None = None,
    canary: CanaryCredit | None = None,
    window: InputWindow | None = None,
) -> ModelRepository:
    observe = window.observe if window is not None else None
    make_batcher = batcher_factory(settings, metrics, tracing, observe)
    if settings.backend == "tfserving":
        # Imported only when chosen: the local path never loads the forwarding client.
        from mnist_serving.repositories.tfserving_replicas import TFServingRepository
        from mnist_serving.runtimes.tfserving_client import TFServingRuntime

        runtime = TFServingRuntime(
            settings.tfserving_targets,
            settings.tfserving_model_name,
            settings.tfserving_timeout_ms / 1000,
            settings.grpc_max_message_bytes,
            metrics,
            tracing,
        )
        return TFServingRepository(
            runtime,
            parts.model_config.config.labels,
            sessions=settings.num_batch_threads,
            make_batcher=make_batcher,
            metrics=metrics,
            on_ready=readiness.set_model_ready,
        )
    return LocalRepository(
        settings.model_base,
        parts.model_config,
        load=load or version_loader(settings),
        make_batcher=make_batcher,
        metrics=metrics,
        poll_seconds=settings.model_poll_seconds,
        on_ready=readiness.set_model_ready,
        canary=canary,
    )


def version_loader(settings: Settings) -> Loader:
    """Load → check → warm up one version folder with the configured runtime."""
    return functools.partial(
        load_version,
        open_runtime=runtime_opener(settings),
        sessions=settings.num_batch_threads,
        warmup=settings.warmup,
    )


def runtime_opener(settings: Settings) -> RuntimeOpener:
    """The runtime that serves a version folder: LiteRT (the file ``precision`` chooses) or
    the SavedModel through TensorFlow, imported only when chosen."""
    if settings.runtime == "savedmodel":
        from mnist_serving.runtimes.savedmodel import SavedModelRuntime

        return SavedModelRuntime
    from mnist_serving.runtimes.litert import LiteRTRuntime

    threads = runtime_threads(settings)
    return functools.partial(LiteRTRuntime, threads=threads, precision=settings.precision)


def runtime_threads(settings: Settings) -> int:
    """The settings' thread count; for ``auto``, what one worker on this machine's CPUs gets
    (a supervisor decides it for its workers, :func:`~mnist_serving.lifecycle.cpus.decided_for`)."""
    if isinstance(settings.runtime_threads, int):
        return settings.runtime_threads
    return plan(1, "auto", usable_cpus()).threads


def batcher_factory(
    settings: Settings,
    metrics: Metrics,
    tracing: Tracing | None = None,
    observe: Observer | None = None,
) -> BatcherFactory:
    config = BatchConfig(
        settings.max_batch_size,
        settings.batch_timeout_micros,
        settings.max_enqueued_batches,
        settings.num_batch_threads,
    )

    async def make(runtime: Runtime, sessions: list[Session]) -> Batcher:
        batcher = Batcher(sessions, config, metrics, runtime.name, tracing, observe)
        await batcher.start()
        return batcher

    return make
