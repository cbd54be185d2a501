"""TF Serving's own metric names, for a gateway standing in for TF Serving."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import HistogramMetricFamily, UnknownMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from mnist_serving.observability.metrics import Metrics


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
        samples = _samples(
            self._metrics.exposition, ("mnist_requests_total", "mnist_request_duration_seconds")
        )
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


def render_tfserving(registry: CollectorRegistry) -> bytes:
    """:func:`tfserving_registry`'s metrics in the Prometheus text format."""
    return generate_latest(registry)
