"""The figures a rollout's gates read, taken from the gateway's own metrics (every worker's):
a snapshot of the per-version and shadow series, and the difference of two snapshots as
:class:`~mnist_serving.core.rollout.Figures` for a stable version and its candidate."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from mnist_serving.core.rollout import Figures

READ = {
    "mnist_version_requests",
    "mnist_version_request_duration_seconds",
    "mnist_version_prediction_confidence",
    "mnist_shadow_images",
}


@dataclass
class VersionSeries:
    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # le → cumulative count
    confidence_sum: float = 0.0
    confidence_count: float = 0.0
    agreeing: float = 0.0  # its images, as a shadow, with the serving version's digit
    mirrored: float = 0.0


Snapshot = dict[str, VersionSeries]


def snapshot(registry: CollectorRegistry) -> Snapshot:
    """Every version's series, summed over the workers whose values ``registry`` reads."""
    found: Snapshot = defaultdict(VersionSeries)
    for family in registry.collect():
        if family.name not in READ:
            continue
        for sample in family.samples:
            version = sample.labels.get("version")
            if version is None:
                continue
            _add(found[version], sample.name, sample.labels, sample.value)
    return dict(found)


def _add(series: VersionSeries, name: str, labels: dict[str, str], value: float) -> None:
    if name == "mnist_version_requests_total":
        series.requests += value
        series.errors += value if labels.get("code") != "OK" else 0.0
    elif name == "mnist_version_request_duration_seconds_bucket":
        le = float(labels["le"])
        series.buckets[le] = series.buckets.get(le, 0.0) + value
    elif name == "mnist_version_prediction_confidence_sum":
        series.confidence_sum += value
    elif name == "mnist_version_prediction_confidence_count":
        series.confidence_count += value
    elif name == "mnist_shadow_images_total":
        series.mirrored += value
        series.agreeing += value if labels.get("agreement") == "agree" else 0.0


def since(now: Snapshot, base: Snapshot, stable: int, candidate: int) -> Figures:
    """What happened between ``base`` and ``now``, for the gates."""
    s = _minus(now.get(str(stable)), base.get(str(stable)))
    c = _minus(now.get(str(candidate)), base.get(str(candidate)))
    return Figures(
        mirrored_images=int(c.mirrored),
        agreeing_images=int(c.agreeing),
        candidate_requests=int(c.requests),
        candidate_errors=int(c.errors),
        stable_requests=int(s.requests),
        stable_errors=int(s.errors),
        candidate_p99=quantile(0.99, c.buckets),
        stable_p99=quantile(0.99, s.buckets),
        candidate_confidence=_mean(c),
        stable_confidence=_mean(s),
    )


def _minus(now: VersionSeries | None, base: VersionSeries | None) -> VersionSeries:
    now, base = now or VersionSeries(), base or VersionSeries()
    return VersionSeries(
        now.requests - base.requests,
        now.errors - base.errors,
        {le: count - base.buckets.get(le, 0.0) for le, count in now.buckets.items()},
        now.confidence_sum - base.confidence_sum,
        now.confidence_count - base.confidence_count,
        now.agreeing - base.agreeing,
        now.mirrored - base.mirrored,
    )


def _mean(series: VersionSeries) -> float | None:
    if series.confidence_count <= 0:
        return None
    return series.confidence_sum / series.confidence_count


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The ``q`` quantile of cumulative ``buckets``, interpolated within its bucket as
    Prometheus's ``histogram_quantile`` does (None without observations)."""
    bounds = sorted(buckets)
    total = buckets.get(math.inf, 0.0)
    if total <= 0:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank:
            if math.isinf(le):
                return lower
            inside = count - below
            return lower + (le - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = le, count
    return lower
