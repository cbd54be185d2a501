"""How many CPUs this process may really use, and how to split them into workers × threads.

``os.cpu_count()`` is the machine's count; a container limited to 2 CPUs on a 64-core node
sees 64 there, and sizing pools by it oversubscribes the quota and throttles every process
in the pod. What counts is the smaller of the CPUs the scheduler lets this process run on
(its affinity mask: ``taskset``, cpusets) and the cgroup's CPU quota (``docker --cpus``,
Kubernetes ``limits.cpu``), rounded down, at least 1.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from mnist_serving.settings import Settings

CGROUP = Path("/sys/fs/cgroup")
# LiteRT's XNNPACK gains little past 4 threads on a model this small (one image is ~50 µs of
# work), while every extra thread costs wake-ups; more cores are better spent on workers.
MAX_AUTO_THREADS = 4


def affinity_cpus() -> int:
    """CPUs the scheduler lets this process run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS has no affinity API
        return os.cpu_count() or 1


def cgroup_quota_cpus(root: Path = CGROUP) -> float | None:
    """The cgroup's CPU quota in CPUs (v2 ``cpu.max``, else v1 ``cpu.cfs_quota_us``), or None
    when there is none (or no cgroup file is readable)."""
    try:
        quota, _, period = (root / "cpu.max").read_text().partition(" ")
        if quota.strip() == "max":
            return None
        return int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def usable_cpus(root: Path = CGROUP, affinity: int | None = None) -> int:
    """Whole CPUs this process may use: min(affinity, quota), rounded down, at least 1."""
    cpus = affinity if affinity is not None else affinity_cpus()
    quota = cgroup_quota_cpus(root)
    if quota is not None:
        cpus = min(cpus, math.floor(quota))
    return max(1, cpus)


@dataclass(frozen=True)
class CpuPlan:
    """Worker processes and LiteRT threads per interpreter, for the CPUs there are."""

    cpus: int
    workers: int
    threads: int

    def describe(self) -> str:
        return f"{self.workers} worker(s) × {self.threads} runtime thread(s) on {self.cpus} CPU(s)"


def plan(workers: int | str, threads: int | str, cpus: int) -> CpuPlan:
    """``auto`` workers = one per CPU; ``auto`` threads = the CPUs each worker has to itself
    (at most :data:`MAX_AUTO_THREADS`), so workers × threads never exceeds the CPUs. Numbers
    given are kept as they are: an operator may oversubscribe on purpose."""
    count = cpus if workers == "auto" else int(workers)
    per_worker = max(1, min(MAX_AUTO_THREADS, cpus // count)) if threads == "auto" else int(threads)
    return CpuPlan(cpus, count, per_worker)


def decided_for(settings: Settings, cpus: int) -> Settings:
    """``settings`` with ``workers`` and ``runtime_threads`` decided for ``cpus``."""
    chosen = plan(settings.workers, settings.runtime_threads, cpus)
    return settings.model_copy(
        update={"workers": chosen.workers, "runtime_threads": chosen.threads}
    )
