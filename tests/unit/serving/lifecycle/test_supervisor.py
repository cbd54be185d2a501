"""The pieces of ``--workers`` that need no process: the CPU budget, the workers × threads
split, restart backoff, and the state workers share."""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from mnist_serving.build import build_gateway
from mnist_serving.core.access_control import AccessControl, token_buckets
from mnist_serving.errors import RateLimited
from mnist_serving.lifecycle.cpus import (
    MAX_AUTO_THREADS,
    cgroup_quota_cpus,
    decided_for,
    plan,
    usable_cpus,
)
from mnist_serving.lifecycle.supervisor import (
    MAX_BACKOFF_SECONDS,
    Supervisor,
    backoff,
    describe_exit,
)
from mnist_serving.settings import Settings
from mnist_serving.shared_state import CanaryCredit, SharedFloats


def cgroup(tmp_path: Path, v2: str | None = None, v1: tuple[str, str] | None = None) -> Path:
    if v2 is not None:
        (tmp_path / "cpu.max").write_text(v2 + "\n")
    if v1 is not None:
        (tmp_path / "cpu").mkdir()
        (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(v1[0] + "\n")
        (tmp_path / "cpu" / "cpu.cfs_period_us").write_text(v1[1] + "\n")
    return tmp_path


@pytest.mark.parametrize(
    ("v2", "v1", "quota"),
    [
        ("max 100000", None, None),  # no limit
        ("150000 100000", None, 1.5),  # docker --cpus 1.5
        ("400000 100000", None, 4.0),
        (None, ("200000", "100000"), 2.0),  # cgroup v1
        (None, ("-1", "100000"), None),  # v1: no limit
        (None, None, None),  # no cgroup files at all
        ("garbage", None, None),
    ],
)
def test_the_cgroup_quota_is_read_from_v2_or_v1(tmp_path, v2, v1, quota) -> None:
    assert cgroup_quota_cpus(cgroup(tmp_path, v2, v1)) == quota


@pytest.mark.parametrize(
    ("affinity", "v2", "cpus"),
    [
        (8, "max 100000", 8),  # the affinity mask alone
        (8, "250000 100000", 2),  # a quota of 2.5 CPUs: 2 whole ones
        (2, "800000 100000", 2),  # a cpuset of 2 under a larger quota
        (4, "50000 100000", 1),  # half a CPU: still one worker
    ],
)
def test_usable_cpus_is_the_smaller_of_affinity_and_quota(tmp_path, affinity, v2, cpus) -> None:
    assert usable_cpus(cgroup(tmp_path, v2), affinity=affinity) == cpus


@pytest.mark.parametrize(
    ("workers", "threads", "cpus", "expected"),
    [
        ("auto", "auto", 2, (2, 1)),  # a worker per CPU, a thread each: 2 × 1 = 2
        ("auto", "auto", 16, (16, 1)),
        (1, "auto", 2, (1, 2)),  # one worker has both CPUs to itself
        (1, "auto", 16, (1, MAX_AUTO_THREADS)),  # capped: little gain past 4 threads
        (4, "auto", 16, (4, 4)),
        (3, "auto", 2, (3, 1)),  # never 0 threads
        (2, 3, 2, (2, 3)),  # numbers given are kept
    ],
)
def test_auto_never_oversubscribes_the_cpus(workers, threads, cpus, expected) -> None:
    chosen = plan(workers, threads, cpus)
    assert (chosen.workers, chosen.threads) == expected
    if workers == "auto" or threads == "auto":
        assert chosen.workers * chosen.threads <= max(cpus, chosen.workers)


def test_settings_take_a_count_or_auto_and_say_what_is_wrong(tmp_path) -> None:
    assert Settings(model_dir=tmp_path).workers == "auto"
    assert Settings(model_dir=tmp_path, workers="3").workers == 3
    decided = decided_for(Settings(model_dir=tmp_path), 4)
    assert (decided.workers, decided.runtime_threads) == (4, 1)
    for bad in ("0", "-1", "many", "2.5"):
        with pytest.raises(
            ValidationError, match=r"workers\n.*a whole number from 1 to 256, or auto"
        ):
            Settings(model_dir=tmp_path, workers=bad)


def test_a_supervisor_needs_decided_workers_of_two_or_more(tmp_path) -> None:
    for workers in ("auto", 1):
        with pytest.raises(ValueError, match="two workers or more"):
            Supervisor(Settings(model_dir=tmp_path, workers=workers), build_gateway)


def test_restart_backoff_doubles_up_to_a_cap() -> None:
    delays = [backoff(n) for n in range(1, 10)]
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0]
    assert delays == sorted(delays) and delays[-1] == MAX_BACKOFF_SECONDS


def test_exits_are_described_for_people() -> None:
    assert describe_exit(-9) == "killed by SIGKILL"
    assert describe_exit(3) == "exit code 3"
    assert describe_exit(None) == "still running"


def test_the_canary_credit_gives_its_share_exactly_in_order() -> None:
    credit = CanaryCredit()
    hits = [credit.take(0.25) for _ in range(12)]
    assert [i for i, hit in enumerate(hits) if hit] == [3, 7, 11]


def test_shared_state_crosses_to_a_spawned_process_and_local_state_refuses_to() -> None:
    with pytest.raises(TypeError, match="process-local"):
        pickle.dumps(SharedFloats(1))
    context = multiprocessing.get_context("spawn")
    shared = SharedFloats(1, context=context)
    credit = CanaryCredit(shared)
    process = context.Process(target=_take_three_quarters, args=(shared,))
    process.start()
    process.join(60)
    assert process.exitcode == 0
    # The child took 0.75 of credit; this process's next 0.25 completes the canary's turn.
    assert credit.take(0.25) is True


def _take_three_quarters(shared: SharedFloats) -> None:
    credit = CanaryCredit(shared)
    assert [credit.take(0.25) for _ in range(3)] == [False, False, False]


def test_rate_limit_buckets_are_one_per_key_and_can_be_shared() -> None:
    keys = {"a": "a" * 16, "b": "b" * 16}
    buckets = token_buckets()
    # The second holder knows the keys in another order, and one more: names find their slots.
    one = AccessControl(keys, 1.0, 2, buckets)
    two = AccessControl({"c": "c" * 16, **dict(reversed(keys.items()))}, 1.0, 2, buckets)
    one.admit("a", now=100.0)
    two.admit("a", now=100.0)  # the second token of the same bucket, taken by another holder
    with pytest.raises(RateLimited):
        one.admit("a", now=100.0)
    two.admit("b", now=100.0)  # another key has its own bucket
    one.admit("a", now=101.0)  # a second later: one token more


def test_metrics_folders_of_dead_supervisors_are_removed(tmp_path) -> None:
    from mnist_serving.lifecycle.supervisor import FOLDER_PREFIX, remove_stale_folders

    child = subprocess.Popen(["true"])  # its pid, once it has exited and been reaped
    child.wait()
    gone, alive, starting = (tmp_path / f"{FOLDER_PREFIX}{n}" for n in ("a", "b", "c"))
    for folder, pid in ((gone, child.pid), (alive, os.getpid())):
        folder.mkdir()
        (folder / "workers.json").write_text(json.dumps({"supervisor": pid, "workers": []}))
    starting.mkdir()  # no table yet
    assert remove_stale_folders(tmp_path) == [gone]
    assert alive.exists() and starting.exists() and not gone.exists()
