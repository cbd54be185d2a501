"""Prometheus metrics, built by a factory that takes a registry (tests use a fresh one).

Names follow Prometheus's conventions: base units (seconds), ``_total`` counters, histograms
that aggregate across replicas. The table in ``docs/metrics.md`` lists them all; with several
worker processes :mod:`~mnist_serving.observability.multiprocess` merges every worker's values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from mnist_serving.errors import refusal_reasons
from mnist_serving.observability.collectors import BulkHistogram, LatestExemplars, ModelInfo
from mnist_serving.observability.spec import LATENCY_BUCKETS, Spec
from mnist_serving.observability.version_metrics import VERSION_SPECS

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
CONFIDENCE_BUCKETS = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0)
# A shadow version's confidence minus the serving version's, for the same image.
DELTA_BUCKETS = (-0.5, -0.2, -0.1, -0.05, -0.02, -0.005, 0.005, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
PROTOCOLS = ("rest", "grpc", "v2_rest", "v2_grpc")


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry  # where the metrics are kept
    exposition: CollectorRegistry  # what a scrape reads: the same one, or every worker's
    requests: Counter
    request_latency: Histogram
    in_flight: Gauge
    refused: Counter
    images: Counter
    inference_latency: Histogram
    batch_size: Histogram
    queue_wait: Histogram
    queue_depth: Gauge
    predictions: Counter
    confidence: BulkHistogram
    version_confidence: BulkHistogram
    shadow_confidence_delta: BulkHistogram
    model_info: ModelInfo
    model_loaded: Gauge
    model_versions: Gauge
    model_load_failures: Counter
    model_config_errors: Counter
    api_key_file_errors: Counter
    version_requests: Counter
    version_latency: Histogram
    version_predictions: Counter
    shadow_requests: Counter
    shadow_images: Counter
    shadow_latency: Histogram
    rollout_phase: Gauge
    rollout_weight: Gauge
    rollout_decisions: Counter
    backend_up: Gauge
    samples_written: Counter
    samples_dropped: Counter
    connections_open: Gauge
    connections_closed: Counter
    exemplars: LatestExemplars | None = None  # with several workers (see LatestExemplars)
    _series: dict[tuple[str, tuple[str, ...]], Any] = field(
        default_factory=dict, compare=False, repr=False
    )

    def series(self, name: str, *labels: str) -> Any:
        """Metric ``name``'s child for ``labels``, kept for the next request: prometheus-client's
        ``labels()`` costs about a microsecond per call, a dict lookup a tenth of that. For
        the request path's metrics, whose children are never removed."""
        key = (name, labels)
        child = self._series.get(key)
        if child is None:
            child = self._series[key] = getattr(self, name).labels(*labels)
        return child

    def observe_latency(
        self, labels: tuple[str, str, str], seconds: float, exemplar: dict[str, str] | None
    ) -> None:
        """One request's latency, by (protocol, route, code), with its trace id when sampled."""
        self.series("request_latency", *labels).observe(seconds, exemplar=exemplar)
        if exemplar is not None and self.exemplars is not None:
            self.exemplars.keep(labels, seconds, exemplar)


_ROUTE = ("protocol", "route")
# Every metric but the bulk histograms, in the order docs/metrics.md lists them.
SPECS = (
    Spec(
        "requests",
        Counter,
        "mnist_requests_total",
        "Requests handled, by protocol (rest, grpc), route and outcome code "
        "(OK or the error's neutral code, e.g. INVALID_ARGUMENT). Health probes excluded.",
        (*_ROUTE, "code"),
    ),
    Spec(
        "request_latency",
        Histogram,
        "mnist_request_duration_seconds",
        "Time from request received to answer ready, successes and failures alike.",
        (*_ROUTE, "code"),
        LATENCY_BUCKETS,
    ),
    Spec(
        "in_flight",
        Gauge,
        "mnist_requests_in_flight",
        "Requests being handled now.",
        _ROUTE,
        mode="livesum",
    ),
    Spec(
        "refused",
        Counter,
        "mnist_requests_refused_total",
        "Requests refused without being run, by reason (queue_full, queue_delay, "
        "in_flight_limit, rate_limited, unauthenticated, permission_denied, slow_body).",
        ("protocol", "reason"),
    ),
    Spec("images", Counter, "mnist_images_total", "Images (examples) classified.", ("protocol",)),
    Spec(
        "inference_latency",
        Histogram,
        "mnist_inference_duration_seconds",
        "Time of one model call (one batch) in the runtime.",
        ("runtime",),
        LATENCY_BUCKETS,
    ),
    Spec(
        "batch_size",
        Histogram,
        "mnist_batch_size",
        "Images per model call after adaptive batching.",
        (),
        BATCH_BUCKETS,
    ),
    Spec(
        "queue_wait",
        Histogram,
        "mnist_batch_queue_wait_seconds",
        "Time a request waited in the batching queue before its model call started.",
        (),
        LATENCY_BUCKETS,
    ),
    Spec(
        "queue_depth",
        Gauge,
        "mnist_batch_queue_images",
        "Images waiting in the batching queue.",
        mode="livesum",
    ),
    Spec(
        "predictions",
        Counter,
        "mnist_predictions_total",
        "Predicted digits, by digit (the predicted-digit mix, for drift).",
        ("digit",),
    ),
    Spec(
        "model_loaded",
        Gauge,
        "mnist_model_ready",
        "1 when the model is loaded and warmed (in every live worker), else 0.",
        mode="livemin",
    ),
    Spec(
        "model_versions",
        Gauge,
        "mnist_model_versions",
        "Model versions by state (LOADING, AVAILABLE, UNLOADING, END).",
        ("state",),
        mode="livemax",
    ),
    Spec(
        "model_load_failures",
        Counter,
        "mnist_model_load_failures",
        "Version folders refused: missing or corrupt files, failed checks or warm-up.",
    ),
    Spec(
        "model_config_errors",
        Counter,
        "mnist_model_config_errors",
        "Times the model config file could not be used (the previous one was kept).",
    ),
    Spec(
        "api_key_file_errors",
        Counter,
        "mnist_api_key_file_errors",
        "Times the API keys file could not be used (the keys in force were kept).",
    ),
    Spec(
        "backend_up",
        Gauge,
        "mnist_backend_target_up",
        "1 while a TF Serving target is in rotation (backend=tfserving; in every live "
        "worker), else 0.",
        ("target",),
        mode="livemin",
    ),
    Spec(
        "samples_written",
        Counter,
        "mnist_samples_written_total",
        "Sampled inputs written to --sample-dir.",
    ),
    Spec(
        "samples_dropped",
        Counter,
        "mnist_samples_dropped_total",
        "Sampled inputs dropped, by reason (queue_full: the writer is behind; write_failed).",
        ("reason",),
    ),
    *VERSION_SPECS,
    Spec(
        "connections_open",
        Gauge,
        "mnist_connections_open",
        "Client connections open now, by protocol (rest; gRPC's are kept by gRPC's core).",
        ("protocol",),
        mode="livesum",
    ),
    Spec(
        "connections_closed",
        Counter,
        "mnist_connections_closed_total",
        "Client connections the gateway closed on its own, by protocol and reason (idle: "
        "nothing sent in time; header_timeout: headers too slow, answered 408; "
        "over_capacity: past max_connections, answered 503; no_client_cert: mutual TLS "
        "required and no certificate sent, answered 403).",
        ("protocol", "reason"),
    ),
)


def create_metrics(
    registry: CollectorRegistry | None = None,
    *,
    process: bool = True,
    exposition: CollectorRegistry | None = None,
    exemplars: LatestExemplars | None = None,
) -> Metrics:
    """All gateway metrics registered in ``registry`` (a new one when ``None``).

    A scrape reads ``registry`` itself (with the process's own metrics when ``process``), or,
    for one worker among several, ``exposition``: every worker's values
    (:func:`~mnist_serving.observability.multiprocess.worker_metrics` makes both)."""
    reg = registry if registry is not None else CollectorRegistry()
    made = {spec.field: spec.make(reg) for spec in SPECS}
    confidence = BulkHistogram(
        "mnist_prediction_confidence",
        "Probability of the predicted digit (a surge of low values means unusual inputs).",
        CONFIDENCE_BUCKETS,
        reg,
    )
    version_confidence = BulkHistogram(
        "mnist_version_prediction_confidence",
        "Probability of the predicted digit, by the version that answered.",
        CONFIDENCE_BUCKETS,
        reg,
        ("version",),
    )
    delta = BulkHistogram(
        "mnist_shadow_confidence_delta",
        "The shadow version's confidence minus the serving version's, per mirrored image.",
        DELTA_BUCKETS,
        reg,
        ("version",),
    )
    model_info = ModelInfo()
    if exposition is None:
        exposition = reg
        if process:
            ProcessCollector(registry=reg)
            PlatformCollector(registry=reg)
    exposition.register(model_info)
    metrics = Metrics(
        registry=reg,
        exposition=exposition,
        confidence=confidence,
        version_confidence=version_confidence,
        shadow_confidence_delta=delta,
        model_info=model_info,
        exemplars=exemplars,
        **made,  # type: ignore[arg-type]
    )
    # Every refusal series exists from the start at 0, so a rate() over it reads 0, not "no
    # data", until the first refusal.
    for protocol in PROTOCOLS:
        for reason in refusal_reasons():
            metrics.refused.labels(protocol, reason)
    return metrics


def latency_spec() -> Spec:
    """The request latency histogram's name and labels (its exemplars are kept per worker)."""
    return next(spec for spec in SPECS if spec.field == "request_latency")


def render(metrics: Metrics, openmetrics: bool = False) -> bytes:
    """The Prometheus text format, or OpenMetrics (which carries the latency histogram's
    trace-id exemplars) for a scraper that asks for it."""
    if openmetrics:
        text: bytes = openmetrics_latest(metrics.exposition)  # type: ignore[no-untyped-call]
        return text
    return generate_latest(metrics.exposition)
