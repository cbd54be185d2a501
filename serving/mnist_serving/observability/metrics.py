"""Prometheus metrics, built by a factory that takes a registry (tests use a fresh one).

Names follow Prometheus's conventions: base units (seconds), ``_total`` counters, histograms
that aggregate across replicas. The table in ``docs/metrics.md`` lists them all.

With several worker processes (:mod:`mnist_serving.lifecycle.supervisor`) every metric is kept by
prometheus-client's multiprocess mode: each worker writes its values to memory-mapped files in
one folder and a scrape of any worker merges them, so counters and histograms are exact sums
and each gauge says how it combines (``livesum`` for in-flight and queue depth: the gateway's
total over live workers; ``livemin`` for readiness: ready when every live worker is). What that
mode cannot hold is solved here: the model's info is the answering worker's own (every worker
serves the same versions, so it is not multiplied by N), the bulk confidence histogram feeds
the library's own histogram values, and the per-process metrics come from
:class:`WorkerProcesses`, labelled by worker.
"""

from __future__ import annotations

import bisect
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client import values as value_classes
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
    UnknownMetricFamily,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar, Sample
from prometheus_client.utils import floatToGoString

# 100 µs to 10 s: a single LiteRT image takes ~0.1 ms, a 1,024-image request ~100 ms.
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075,
    0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
CONFIDENCE_BUCKETS = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0)
# Up to this many values, a plain loop beats numpy's per-call overhead (most requests hold one
# image; numpy's searchsorted, bincount and masks cost ~10 µs whatever the size).
FEW_VALUES = 8
PROTOCOLS = ("rest", "grpc", "v2_rest", "v2_grpc")
REFUSAL_REASONS = (
    "queue_full",
    "queue_delay",
    "in_flight_limit",
    "rate_limited",
    "unauthenticated",
)


class BulkHistogram:
    """A histogram fed a whole array at once: one numpy pass per batch instead of one
    ``observe`` per image (256 of those cost ~2.5 ms of event-loop time per request).

    It is prometheus-client's own :class:`Histogram` underneath, whose per-bucket values are
    added to directly (the library has no bulk observe), so it is exposed, and summed across
    worker processes, like any other histogram."""

    def __init__(
        self, name: str, documentation: str, buckets: tuple[float, ...], registry: CollectorRegistry
    ) -> None:
        self._histogram = Histogram(name, documentation, registry=registry, buckets=buckets)
        self._upper = np.array([*buckets, float("inf")])
        self._upper_list = self._upper.tolist()
        # The library's values: non-cumulative counts per bucket (cumulated when collected),
        # and the sum; each takes its own lock.
        self._buckets = self._histogram._buckets
        self._sum = self._histogram._sum

    def observe_many(self, observed: np.ndarray) -> None:
        # NaN (a model fed absurd inputs answers it) belongs in no bucket and would make the
        # sum NaN for good; it is left out, as a value that is not a measurement.
        if len(observed) <= FEW_VALUES:
            for value in observed.tolist():
                if value == value:  # not NaN
                    self._buckets[bisect.bisect_left(self._upper_list, value)].inc(1)
                    self._sum.inc(value)
            return
        observed = observed[~np.isnan(observed)]
        slots = np.searchsorted(self._upper, observed, side="left")  # first bucket with v <= le
        for slot, count in enumerate(np.bincount(slots, minlength=len(self._upper)).tolist()):
            if count:
                self._buckets[slot].inc(count)
        self._sum.inc(float(observed.sum()))


class ModelInfo(Collector):
    """``mnist_model_info``: the default version, its runtime and load time, in this process.

    prometheus-client's ``Info`` cannot live in multiprocess mode; this one is read off the
    process that answers, which serves the same versions as every other worker."""

    name = "mnist_model"
    documentation = "The model being served: version, runtime, load time."

    def __init__(self) -> None:
        self._labels: dict[str, str] = {}

    def info(self, labels: dict[str, str]) -> None:
        self._labels = dict(labels)

    def collect(self) -> Iterator[InfoMetricFamily]:
        family = InfoMetricFamily(self.name, self.documentation)
        if self._labels:
            family.add_metric([], self._labels)
        yield family


class LatestExemplars:
    """The latest exemplar of each latency bucket, kept in this process: with several workers,
    prometheus-client's files hold none, so a scrape attaches the answering worker's own (an
    example trace per bucket, from the requests that worker served) to the merged buckets."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self._upper = [*buckets, float("inf")]
        self._latest: dict[tuple[str, ...], Exemplar] = {}

    def keep(self, labels: tuple[str, ...], value: float, exemplar: dict[str, str]) -> None:
        le = floatToGoString(self._upper[bisect.bisect_left(self._upper, value)])  # type: ignore[no-untyped-call]
        self._latest[(*labels, le)] = Exemplar(exemplar, value, time.time())

    def attach(self, family: Metric, label_names: tuple[str, ...]) -> Metric:
        if not self._latest:
            return family
        samples = []
        for sample in family.samples:
            key = (*(sample.labels.get(n, "") for n in label_names), sample.labels.get("le", ""))
            found = self._latest.get(key) if sample.name.endswith("_bucket") else None
            samples.append(sample._replace(exemplar=found) if found else sample)
        family.samples = samples
        return family


class _WithExemplars(Collector):
    """Every worker's values (the multiprocess collector), with this worker's exemplars."""

    def __init__(
        self, merged: Collector, name: str, labels: tuple[str, ...], kept: LatestExemplars
    ) -> None:
        self._merged, self._name, self._labels, self._kept = merged, name, labels, kept

    def collect(self) -> Iterator[Metric]:
        for family in self._merged.collect():
            yield self._kept.attach(family, self._labels) if family.name == self._name else family


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
    model_info: ModelInfo
    model_loaded: Gauge
    model_versions: Gauge
    model_load_failures: Counter
    model_config_errors: Counter
    version_requests: Counter
    backend_up: Gauge
    samples_written: Counter
    samples_dropped: Counter
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


GaugeMode = Any  # one of prometheus-client's multiprocess modes ("livesum", "livemin", …)


@dataclass(frozen=True)
class _Spec:
    """One metric of :class:`Metrics`: its field, kind, Prometheus name, help and labels."""

    field: str
    kind: type[Counter] | type[Gauge] | type[Histogram]
    name: str
    documentation: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None
    # How a gauge combines across worker processes (prometheus-client's multiprocess_mode).
    mode: GaugeMode = "livesum"

    def make(self, registry: CollectorRegistry) -> Counter | Gauge | Histogram:
        if self.buckets is not None:
            return Histogram(
                self.name, self.documentation, self.labels, registry=registry, buckets=self.buckets
            )
        if self.kind is Gauge:
            return Gauge(
                self.name, self.documentation, self.labels, registry=registry,
                multiprocess_mode=self.mode,
            )  # fmt: skip
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
    _Spec("in_flight", Gauge, "mnist_requests_in_flight", "Requests being handled now.", _ROUTE,
          mode="livesum"),
    _Spec("refused", Counter, "mnist_requests_refused_total",
          "Requests refused without being run, by reason (queue_full, queue_delay, "
          "in_flight_limit, rate_limited, unauthenticated).", ("protocol", "reason")),
    _Spec("images", Counter, "mnist_images_total", "Images (examples) classified.", ("protocol",)),
    _Spec("inference_latency", Histogram, "mnist_inference_duration_seconds",
          "Time of one model call (one batch) in the runtime.", ("runtime",), LATENCY_BUCKETS),
    _Spec("batch_size", Histogram, "mnist_batch_size",
          "Images per model call after adaptive batching.", (), BATCH_BUCKETS),
    _Spec("queue_wait", Histogram, "mnist_batch_queue_wait_seconds",
          "Time a request waited in the batching queue before its model call started.", (),
          LATENCY_BUCKETS),
    _Spec("queue_depth", Gauge, "mnist_batch_queue_images", "Images waiting in the batching queue.",
          mode="livesum"),
    _Spec("predictions", Counter, "mnist_predictions_total",
          "Predicted digits, by digit (the predicted-digit mix, for drift).", ("digit",)),
    _Spec("model_loaded", Gauge, "mnist_model_ready",
          "1 when the model is loaded and warmed (in every live worker), else 0.", mode="livemin"),
    _Spec("model_versions", Gauge, "mnist_model_versions",
          "Model versions by state (LOADING, AVAILABLE, UNLOADING, END).", ("state",),
          mode="livemax"),
    _Spec("model_load_failures", Counter, "mnist_model_load_failures",
          "Version folders refused: missing or corrupt files, failed checks or warm-up."),
    _Spec("model_config_errors", Counter, "mnist_model_config_errors",
          "Times the model config file could not be used (the previous one was kept)."),
    _Spec("version_requests", Counter, "mnist_version_requests",
          "Inference requests answered by each model version (shows a canary split).",
          ("version",)),
    _Spec("backend_up", Gauge, "mnist_backend_target_up",
          "1 while a TF Serving target is in rotation (backend=tfserving; in every live "
          "worker), else 0.", ("target",), mode="livemin"),
    _Spec("samples_written", Counter, "mnist_samples_written_total",
          "Sampled inputs written to --sample-dir."),
    _Spec("samples_dropped", Counter, "mnist_samples_dropped_total",
          "Sampled inputs dropped, by reason (queue_full: the writer is behind; write_failed).",
          ("reason",)),
)  # fmt: skip


def create_metrics(
    registry: CollectorRegistry | None = None,
    *,
    process: bool = True,
    shared_dir: Path | None = None,
) -> Metrics:
    """All gateway metrics registered in ``registry`` (a new one when ``None``).

    ``shared_dir``: this process is one of several workers whose metrics live in that folder
    (``PROMETHEUS_MULTIPROC_DIR``, set before prometheus-client was imported); a scrape then
    reads every worker's values from it."""
    reg = registry if registry is not None else CollectorRegistry()
    made = {spec.field: spec.make(reg) for spec in _SPECS}
    confidence = BulkHistogram(
        "mnist_prediction_confidence",
        "Probability of the predicted digit (a surge of low values means unusual inputs).",
        CONFIDENCE_BUCKETS,
        reg,
    )
    model_info = ModelInfo()
    exemplars = None
    if shared_dir is None:
        exposition = reg
        if process:
            ProcessCollector(registry=reg)
            PlatformCollector(registry=reg)
    else:
        exemplars = LatestExemplars(LATENCY_BUCKETS)
        exposition = shared_exposition(shared_dir, exemplars, process=process)
    exposition.register(model_info)
    metrics = Metrics(
        registry=reg,
        exposition=exposition,
        confidence=confidence,
        model_info=model_info,
        exemplars=exemplars,
        **made,  # type: ignore[arg-type]
    )
    # Every refusal series exists from the start at 0, so a rate() over it reads 0, not "no
    # data", until the first refusal.
    for protocol in PROTOCOLS:
        for reason in REFUSAL_REASONS:
            metrics.refused.labels(protocol, reason)
    return metrics


def shared_exposition(
    folder: Path, exemplars: LatestExemplars, *, process: bool = True
) -> CollectorRegistry:
    """A scrape's registry for one worker among several: every worker's values merged from
    ``folder`` (the latency buckets with this worker's exemplars), and the worker processes'
    own metrics labelled by worker."""
    if value_classes.ValueClass.__name__ != "MmapedValue":
        raise RuntimeError(
            "prometheus-client was imported before PROMETHEUS_MULTIPROC_DIR was set; "
            "this worker's values would stay in its own memory"
        )
    exposition = CollectorRegistry(auto_describe=False)
    merged = MultiProcessCollector(None, str(folder))  # type: ignore[no-untyped-call]
    latency = next(spec for spec in _SPECS if spec.field == "request_latency")
    exposition.register(_WithExemplars(merged, latency.name, latency.labels, exemplars))
    if process:
        exposition.register(WorkerProcesses(folder / WORKER_TABLE))
        PlatformCollector(registry=exposition)
    return exposition


WORKER_TABLE = "workers.json"  # written by the supervisor; read by WorkerProcesses


class WorkerProcesses(Collector):
    """The supervisor's worker table as metrics: how many workers are up, how often one was
    restarted, and each process's CPU, memory, file descriptors and start time (the library's
    process collector, read for every worker's pid and labelled ``worker``)."""

    def __init__(self, table: Path) -> None:
        self._table = table

    def collect(self) -> Iterator[Metric]:
        try:
            table = json.loads(self._table.read_text())
        except (OSError, ValueError):
            return
        workers: dict[str, int] = {str(w["index"]): int(w["pid"]) for w in table["workers"]}
        up = GaugeMetricFamily("mnist_workers", "Worker processes serving now.")
        up.add_metric([], len(workers))
        yield up
        restarts = CounterMetricFamily(
            "mnist_worker_restarts", "Worker processes restarted after they died."
        )
        restarts.add_metric([], table["restarts"])
        yield restarts
        yield from _labelled_by_worker({"supervisor": int(table["supervisor"]), **workers})


def _constant(pid: int) -> Callable[[], int]:
    return lambda: pid


def _labelled_by_worker(pids: dict[str, int]) -> Iterable[Metric]:
    families: dict[str, Metric] = {}
    for worker, pid in pids.items():
        if not os.path.exists(f"/proc/{pid}"):
            continue  # gone since the table was written; the supervisor will rewrite it
        collector = ProcessCollector(pid=_constant(pid), registry=None)
        for family in collector.collect():
            merged = families.setdefault(
                family.name, Metric(family.name, family.documentation, family.type)
            )
            for sample in family.samples:
                merged.add_sample(sample.name, {**sample.labels, "worker": worker}, sample.value)
    return families.values()


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
        # One read of every worker's values serves both families.
        samples = _samples(self._metrics.exposition, ("mnist_requests_total",
                                                      "mnist_request_duration_seconds"))  # fmt: skip
        totals: dict[str, float] = {}
        for sample in samples["mnist_requests_total"]:
            if sample.labels["route"] == "predict":
                code = sample.labels["code"]
                totals[code] = totals.get(code, 0.0) + sample.value
        for code, value in sorted(totals.items()):
            count.add_metric((self._model, code), value)
        yield count
        yield self._latency(samples["mnist_request_duration_seconds"])

    def _latency(self, samples: list[Sample]) -> HistogramMetricFamily:
        family = HistogramMetricFamily(
            ":tensorflow:serving:request_latency",
            "Predict latency of successful requests, microseconds (TF Serving's name).",
            labels=("model_name", "API", "entrypoint"),
        )
        series: dict[str, dict[str, float]] = {}
        for sample in samples:
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


def _samples(registry: CollectorRegistry, prefixes: tuple[str, ...]) -> dict[str, list[Sample]]:
    """The samples of some metrics as a scrape would read them (every worker's, summed), by
    the prefix their names start with."""
    found: dict[str, list[Sample]] = {prefix: [] for prefix in prefixes}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            for prefix in prefixes:
                if sample.name.startswith(prefix):
                    found[prefix].append(sample)
    return found


def _microseconds(le: str) -> str:
    return le if le == "+Inf" else repr(float(le) * 1e6)


def tfserving_registry(metrics: Metrics, model_name: str) -> CollectorRegistry:
    """A registry holding only :class:`TfServingMetricsView`, for TF Serving's metrics path."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TfServingMetricsView(metrics, model_name))
    return registry
