"""Metric kinds prometheus-client lacks: a histogram fed a whole batch at once, the model's
info as this process knows it, the latest exemplar of each latency bucket, and the drift
gauges computed when scraped."""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar
from prometheus_client.utils import floatToGoString

# Up to this many values, a plain loop beats numpy's per-call overhead (most requests hold one
# image; numpy's searchsorted, bincount and masks cost ~10 µs whatever the size).
FEW_VALUES = 8


class BulkHistogram:
    """A histogram fed a whole array at once: one numpy pass per batch instead of one
    ``observe`` per image (256 of those cost ~2.5 ms of event-loop time per request).

    It is prometheus-client's own :class:`Histogram` underneath, whose per-bucket values are
    added to directly (the library has no bulk observe), so it is exposed, and summed across
    worker processes, like any other histogram. With ``labelnames``, :meth:`labels` gives
    each child's feeder (kept: one dict lookup per call)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        buckets: tuple[float, ...],
        registry: CollectorRegistry,
        labelnames: tuple[str, ...] = (),
    ) -> None:
        self._histogram = Histogram(
            name, documentation, labelnames, registry=registry, buckets=buckets
        )
        self._upper = np.array([*buckets, float("inf")])
        self._children: dict[tuple[str, ...], BulkFeeder] = {}
        if not labelnames:
            self._feeder = BulkFeeder(self._histogram, self._upper)

    def observe_many(self, observed: np.ndarray) -> None:
        self._feeder.observe_many(observed)

    def labels(self, *values: str) -> BulkFeeder:
        feeder = self._children.get(values)
        if feeder is None:
            child = self._histogram.labels(*values)
            feeder = self._children[values] = BulkFeeder(child, self._upper)
        return feeder


class BulkFeeder:
    """Adds a whole array's values to one histogram (or one labelled child of it)."""

    def __init__(self, histogram: Histogram, upper: np.ndarray) -> None:
        self._upper = upper
        self._upper_list = upper.tolist()
        # The library's values: non-cumulative counts per bucket (cumulated when collected),
        # and the sum; each takes its own lock.
        self._buckets = histogram._buckets
        self._sum = histogram._sum

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


class DriftGauges(Collector):
    """The input-drift scores as gauges, computed when scraped from the drift report (every
    worker's window: any worker answers for the gateway): ``mnist_input_drift{feature}``
    (``overall`` too), the alarm, the estimated accuracy and the window's size. No score without a
    reference or with too few images: the series are absent then, not a guess."""

    def __init__(self, report: Callable[[], dict[str, Any]]) -> None:
        self._report = report

    def collect(self) -> Iterator[Metric]:
        report = self._report()
        drift = GaugeMetricFamily(
            "mnist_input_drift",
            "Input drift of the last served images against the serving version's training "
            "digits: PSI per feature, and overall (the largest); absent without a reference.",
            labels=["feature"],
        )
        alarm = GaugeMetricFamily(
            "mnist_input_drift_alarm",
            "1 while the overall drift score is past the gateway's --drift-threshold, else 0; "
            "absent without a score.",
        )
        if report["overall"] is not None:
            for feature, score in report["features"].items():
                drift.add_metric([feature], score)
            drift.add_metric(["overall"], report["overall"])
            alarm.add_metric([], 1.0 if report["alarm"] else 0.0)
        yield drift
        yield alarm
        accuracy = GaugeMetricFamily(
            "mnist_estimated_accuracy",
            "Accuracy over the drift window estimated without labels: the mean calibrated "
            "confidence.",
        )
        if report["estimated_accuracy"] is not None:
            accuracy.add_metric([], report["estimated_accuracy"])
        yield accuracy
        yield GaugeMetricFamily(
            "mnist_drift_window_images",
            "Images in the drift window now (every worker's).",
            value=report["window"]["images"],
        )
