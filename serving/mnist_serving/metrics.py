"""Prometheus metrics, built by a factory that takes a registry (tests use a fresh one).

Names follow Prometheus's conventions: base units (seconds), ``_total`` counters, histograms
that aggregate across replicas. The table in ``docs/metrics.md`` lists them all.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import HistogramMetricFamily, UnknownMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

# 100 µs to 10 s: a single LiteRT image takes ~0.1 ms, a 1,024-image request ~100 ms.
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075,
    0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
CONFIDENCE_BUCKETS = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0)
PROTOCOLS = ("rest", "grpc", "v2_rest", "v2_grpc")
REFUSAL_REASONS = ("queue_full", "in_flight_limit", "rate_limited", "unauthenticated")


class BulkHistogram(Collector):
    """A histogram fed a whole array at once: one numpy pass per batch instead of one
    ``observe`` per image (256 of those cost ~2.5 ms of event-loop time per request)."""

    def __init__(
        self, name: str, documentation: str, buckets: tuple[float, ...], registry: CollectorRegistry
    ) -> None:
        self.name = name
        self.documentation = documentation
        self._upper = np.array([*buckets, float("inf")])
        self._counts = np.zeros(len(self._upper), dtype=np.int64)
        self._sum = 0.0
        self._lock = threading.Lock()
        registry.register(self)

    def observe_many(self, values: np.ndarray) -> None:
        # NaN (a model fed absurd inputs answers it) belongs in no bucket and would make the
        # sum NaN for good; it is left out, as a value that is not a measurement.
        values = values[~np.isnan(values)]
        slots = np.searchsorted(self._upper, values, side="left")  # first bucket with v <= le
        counts = np.bincount(slots, minlength=len(self._upper))
        with self._lock:
            self._counts += counts
            self._sum += float(values.sum())

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self._lock:
            cumulative = np.cumsum(self._counts).tolist()
            total = self._sum
        buckets = [
            ("+Inf" if le == np.inf else repr(float(le)), c)
            for le, c in zip(self._upper, cumulative, strict=True)
        ]
        yield HistogramMetricFamily(self.name, self.documentation, buckets=buckets, sum_value=total)


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
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
    model_info: Info
    model_loaded: Gauge
    model_versions: Gauge
    model_load_failures: Counter
    model_config_errors: Counter
    version_requests: Counter
    backend_up: Gauge
    samples_written: Counter
    samples_dropped: Counter


@dataclass(frozen=True)
class _Spec:
    """One metric of :class:`Metrics`: its field, kind, Prometheus name, help and labels."""

    field: str
    kind: type[Counter] | type[Gauge] | type[Histogram] | type[Info]
    name: str
    documentation: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None

    def make(self, registry: CollectorRegistry) -> Counter | Gauge | Histogram | Info:
        if self.buckets is not None:
            return Histogram(
                self.name, self.documentation, self.labels, registry=registry, buckets=self.buckets
            )
        return self.kind(self.name, self.documentation, self.labels, registry=registry)


_ROUTE = ("protocol", "route")
# Every metric but the bulk confidence histogram, in the order docs/metrics.md lists them.
_SPECS = (
    _Spec("requests", Counter, "mnist_requests_total",
          "Requests handled, by protocol (rest, grpc), route and outcome code "
          "(OK or the error's neutral code, e.g. INVALID_ARGUMENT). Health probes excluded.",
          (*_ROUTE, "code")),
    _Spec("request_latency", Histogram, "mnist_request_duration_seconds",
          "Time from request received to answer ready, successes and failures alike.",
          (*_ROUTE, "code"), LATENCY_BUCKETS),
    _Spec("in_flight", Gauge, "mnist_requests_in_flight", "Requests being handled now.", _ROUTE),
    _Spec("refused", Counter, "mnist_requests_refused_total",
          "Requests refused without being run, by reason (queue_full, in_flight_limit, "
          "rate_limited, unauthenticated).", ("protocol", "reason")),
    _Spec("images", Counter, "mnist_images_total", "Images (examples) classified.", ("protocol",)),
    _Spec("inference_latency", Histogram, "mnist_inference_duration_seconds",
          "Time of one model call (one batch) in the runtime.", ("runtime",), LATENCY_BUCKETS),
    _Spec("batch_size", Histogram, "mnist_batch_size",
          "Images per model call after adaptive batching.", (), BATCH_BUCKETS),
    _Spec("queue_wait", Histogram, "mnist_batch_queue_wait_seconds",
          "Time a request waited in the batching queue before its model call started.", (),
          LATENCY_BUCKETS),
    _Spec("queue_depth", Gauge, "mnist_batch_queue_images", "Images waiting in the batching queue."),
    _Spec("predictions", Counter, "mnist_predictions_total",
          "Predicted digits, by digit (the predicted-digit mix, for drift).", ("digit",)),
    _Spec("model_info", Info, "mnist_model", "The model being served: version, runtime, load time."),
    _Spec("model_loaded", Gauge, "mnist_model_ready", "1 when the model is loaded and warmed, else 0."),
    _Spec("model_versions", Gauge, "mnist_model_versions",
          "Model versions by state (LOADING, AVAILABLE, UNLOADING, END).", ("state",)),
    _Spec("model_load_failures", Counter, "mnist_model_load_failures",
          "Version folders refused: missing or corrupt files, failed checks or warm-up."),
    _Spec("model_config_errors", Counter, "mnist_model_config_errors",
          "Times the model config file could not be used (the previous one was kept)."),
    _Spec("version_requests", Counter, "mnist_version_requests",
          "Inference requests answered by each model version (shows a canary split).",
          ("version",)),
    _Spec("backend_up", Gauge, "mnist_backend_target_up",
          "1 while a TF Serving target is in rotation (backend=tfserving), else 0.", ("target",)),
    _Spec("samples_written", Counter, "mnist_samples_written_total",
          "Sampled inputs written to --sample-dir."),
    _Spec("samples_dropped", Counter, "mnist_samples_dropped_total",
          "Sampled inputs dropped, by reason (queue_full: the writer is behind; write_failed).",
          ("reason",)),
)  # fmt: skip


def create_metrics(registry: CollectorRegistry | None = None, *, process: bool = True) -> Metrics:
    """All gateway metrics registered in ``registry`` (a new one when ``None``)."""
    reg = registry if registry is not None else CollectorRegistry()
    if process:
        ProcessCollector(registry=reg)
        PlatformCollector(registry=reg)
    made = {spec.field: spec.make(reg) for spec in _SPECS}
    confidence = BulkHistogram(
        "mnist_prediction_confidence",
        "Probability of the predicted digit (a surge of low values means unusual inputs).",
        CONFIDENCE_BUCKETS,
        reg,
    )
    metrics = Metrics(registry=reg, confidence=confidence, **made)  # type: ignore[arg-type]
    # Every refusal series exists from the start at 0, so a rate() over it reads 0, not "no
    # data", until the first refusal.
    for protocol in PROTOCOLS:
        for reason in REFUSAL_REASONS:
            metrics.refused.labels(protocol, reason)
    return metrics


class TfServingMetricsView(Collector):
    """TF Serving's own metric names, derived at scrape time from the gateway's counters.

    Served at TF Serving's monitoring path so that a gateway standing in for TF Serving is
    scraped and graphed the same way, with nothing added to the request path: the series are
    read off ``mnist_requests_total`` and ``mnist_request_duration_seconds`` for TF Serving's
    Predict (REST and gRPC). As TF Serving has them, latency is in microseconds and counts
    successes only, and ``request_count`` carries no ``_total`` suffix.
    """

    def __init__(self, metrics: Metrics, model_name: str) -> None:
        self._metrics = metrics
        self._model = model_name

    def collect(self) -> Iterator[UnknownMetricFamily | HistogramMetricFamily]:
        count = UnknownMetricFamily(
            ":tensorflow:serving:request_count",
            "Predict requests by status (TF Serving's name).",
            labels=("model_name", "status"),
        )
        totals: dict[str, float] = {}
        for sample in _samples(self._metrics.requests, "_total"):
            if sample.labels["route"] == "predict":
                code = sample.labels["code"]
                totals[code] = totals.get(code, 0.0) + sample.value
        for code, value in sorted(totals.items()):
            count.add_metric((self._model, code), value)
        yield count
        yield self._latency()

    def _latency(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(
            ":tensorflow:serving:request_latency",
            "Predict latency of successful requests, microseconds (TF Serving's name).",
            labels=("model_name", "API", "entrypoint"),
        )
        series: dict[str, dict[str, float]] = {}
        for sample in _samples(self._metrics.request_latency, ""):
            labels = sample.labels
            if labels["route"] != "predict" or labels["code"] != "OK":
                continue
            entry = series.setdefault(labels["protocol"], {})
            suffix = sample.name.removeprefix("mnist_request_duration_seconds")
            key = f"{suffix}:{labels.get('le', '')}"
            entry[key] = entry.get(key, 0.0) + sample.value
        for protocol, values in sorted(series.items()):
            buckets = [
                (_microseconds(key.split(":", 1)[1]), value)
                for key, value in values.items()
                if key.startswith("_bucket:")
            ]
            family.add_metric(
                (self._model, "predict" if protocol == "rest" else "Predict", protocol.upper()),
                buckets,
                values.get("_sum:", 0.0) * 1e6,
            )
        return family


def _samples(metric: Counter | Histogram, suffix: str) -> list[Sample]:
    return [s for family in metric.collect() for s in family.samples if s.name.endswith(suffix)]


def _microseconds(le: str) -> str:
    return le if le == "+Inf" else repr(float(le) * 1e6)


def tfserving_registry(metrics: Metrics, model_name: str) -> CollectorRegistry:
    """A registry holding only :class:`TfServingMetricsView`, for TF Serving's metrics path."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TfServingMetricsView(metrics, model_name))
    return registry
