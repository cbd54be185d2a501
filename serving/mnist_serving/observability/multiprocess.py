"""The gateway's metrics with several worker processes: every worker's values merged.

Each worker keeps its values in memory-mapped files in one folder (prometheus-client's
multiprocess mode) and a scrape of any worker merges them, so counters and histograms are
exact sums and each gauge says how it combines (``livesum`` for in-flight and queue depth;
``livemin`` for readiness: ready when every live worker is). What that mode cannot hold is
solved here: exemplars are the answering worker's own (:class:`LatestExemplars`), and the
per-process metrics come from the supervisor's worker table (:class:`WorkerProcesses`),
labelled by worker.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client import values as value_classes
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from mnist_serving.observability.collectors import LatestExemplars
from mnist_serving.observability.input_window import inputs_path
from mnist_serving.observability.metrics import Metrics, create_metrics, latency_spec
from mnist_serving.observability.recent_traffic import ring_path
from mnist_serving.observability.spec import LATENCY_BUCKETS


class _WithExemplars(Collector):
    """Every worker's values (the multiprocess collector), with this worker's exemplars."""

    def __init__(
        self, merged: Collector, name: str, labels: tuple[str, ...], kept: LatestExemplars
    ) -> None:
        self._merged, self._name, self._labels, self._kept = merged, name, labels, kept

    def collect(self) -> Iterator[Metric]:
        for family in self._merged.collect():
            yield self._kept.attach(family, self._labels) if family.name == self._name else family


def worker_metrics(folder: Path, *, process: bool = True) -> Metrics:
    """The metrics of one worker among several, whose values live in ``folder``
    (``PROMETHEUS_MULTIPROC_DIR``, set before prometheus-client was imported): a scrape of
    any worker reads every worker's values from it."""
    exemplars = LatestExemplars(LATENCY_BUCKETS)
    exposition = shared_exposition(folder, exemplars, process=process)
    return create_metrics(process=process, exposition=exposition, exemplars=exemplars)


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
    latency = latency_spec()
    exposition.register(_WithExemplars(merged, latency.name, latency.labels, exemplars))
    if process:
        exposition.register(WorkerProcesses(folder / WORKER_TABLE))
        PlatformCollector(registry=exposition)
    return exposition


WORKER_TABLE = "workers.json"  # written by the supervisor; read by WorkerProcesses


def worker_files(folder: Path, pid: int) -> tuple[Path, ...]:
    """What a worker keeps in the shared folder beside its metric values: its recent-traffic
    ring and its drift window (removed when it dies)."""
    return ring_path(folder, pid), inputs_path(folder, pid)


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
