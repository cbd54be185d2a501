"""One metric of :class:`~mnist_serving.observability.metrics.Metrics`, as a row: its field,
kind, Prometheus name, help and labels, made in a registry when the metrics are created."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# 25 µs to 10 s: from one image's model call (the int8 file's is the shortest) to a large
# request's; what each takes is in docs/benchmarks.md.
LATENCY_BUCKETS = tuple(
    float(le)
    for le in [
        "0.000025",
        "0.00005",
        "0.0001",
        "0.00025",
        "0.0005",
        "0.00075",
        "0.001",
        "0.0015",
        "0.002",
        "0.003",
        "0.005",
        "0.0075",
        "0.01",
        "0.015",
        "0.025",
        "0.05",
        "0.075",
        "0.1",
        "0.25",
        "0.5",
        "1.0",
        "2.5",
        "5.0",
        "10.0",
    ]
)
GaugeMode = Any  # one of prometheus-client's multiprocess modes ("livesum", "livemin", …)


@dataclass(frozen=True)
class Spec:
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
                self.name,
                self.documentation,
                self.labels,
                registry=registry,
                multiprocess_mode=self.mode,
            )
        return self.kind(self.name, self.documentation, self.labels, registry=registry)
