"""The compose stack heals itself: under a steady load, TF Serving's and the gateway's main
processes are killed from the host with SIGKILL (as a crash or the kernel's OOM killer would:
the engine's own ``kill``/``stop`` count as an operator's stop, which restart policies respect),
then one gateway worker inside its container. Each comes back by itself; the clients' view of
each fault (answers by status, the longest gap without an answer, the time to recover) goes to
the figures, and no request waits past its deadline.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.end_to_end.deploy.conftest import PROJECT
from tests.helpers.containers import ROOT, Engine
from tests.helpers.processes import free_port
from tests.helpers.traffic import Traffic, recovery
from tests.helpers.versions import wait_for

pytestmark = pytest.mark.end_to_end
SERVICES = ("trainer", "tfserving", "gateway")
DEADLINE_S = 5.0  # every client request's own timeout
SETTLE_S = 3.0  # steady answers before and after each fault


@pytest.mark.timeout(600)  # images built on a fresh machine, a training run, three crashes
def test_the_stack_comes_back_by_itself_from_crashes(engine: Engine, figures) -> None:
    rest, grpc_port, tfs = free_port(), free_port(), free_port()
    env = {
        "GATEWAY_REST_PORT": str(rest),
        "GATEWAY_GRPC_PORT": str(grpc_port),
        "TFSERVING_GRPC_PORT": str(free_port()),
        "TFSERVING_REST_PORT": str(tfs),
        "MNIST_TRAIN_DATA": "/data/mnist.npz",
        "MNIST_TRAIN_RECIPE": "seed",
        "MNIST_TRAIN_EPOCHS": "1",
    }
    gateway = f"http://127.0.0.1:{rest}"
    with np.load(ROOT / "tests" / "fixtures" / "mnist-small.npz") as data:
        images = data["x_test"][:8]
    found: dict[str, dict[str, object]] = {}
    with engine.health_checks():
        engine.compose("up", "-d", "--no-build", *SERVICES, extra=env)
        try:
            wait_for(lambda: _steady(gateway), "the gateway", 240)
            with (
                Traffic.rest(gateway, images.tobytes(), workers=4, timeout=DEADLINE_S) as rest_load,
                Traffic.grpc(f"127.0.0.1:{grpc_port}", images, 2, DEADLINE_S) as grpc_load,
            ):
                for fault, victim in (
                    ("tfserving", lambda: _main_pid(engine, "tfserving")),
                    ("gateway", lambda: _main_pid(engine, "gateway")),
                    ("gateway_worker", lambda: _a_worker(_main_pid(engine, "gateway"))),
                ):
                    found[fault] = _crash(fault, victim, engine, gateway, rest_load, grpc_load)
            _nothing_left_broken(engine, gateway)
        finally:
            engine.compose("down", "-v", extra=env)
    figures["chaos"] = found
    for fault, seen in found.items():
        assert seen["recovered"], (fault, seen)
        assert seen["longest_request_s"] <= DEADLINE_S + 1, (fault, seen)  # nothing hung
        assert seen["answered_after_recovery"] > 0, (fault, seen)


def _crash(
    fault: str,
    victim: Callable[[], int],
    engine: Engine,
    gateway: str,
    *loads: Traffic,
) -> dict[str, object]:
    """SIGKILL the ``victim`` process, wait until every client gets answers again, and what
    they saw."""
    time.sleep(SETTLE_S)
    restarts = {s: _restarts(engine, s) for s in ("tfserving", "gateway")}
    pid = victim()
    killed = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), f"{fault} to die", 10)
    wait_for(lambda: _steady(gateway), f"the stack to answer again after {fault}", 120)
    time.sleep(SETTLE_S)
    ended = time.monotonic()
    seen = recovery([o for load in loads for o in load.between(killed, ended)], killed)
    seen["restart_counts"] = {s: _restarts(engine, s) - n for s, n in restarts.items()}
    expected = {"tfserving": 1 if fault == "tfserving" else 0, "gateway": int(fault == "gateway")}
    states = {s: engine.inspect(engine.container(s), "{{json .State}}") for s in expected}
    assert seen["restart_counts"] == expected, (
        fault,
        seen,
        states,
    )  # a worker: its supervisor's job
    return seen


def _steady(gateway: str) -> bool:
    try:
        return httpx.get(gateway + "/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _main_pid(engine: Engine, service: str) -> int:
    """The container's main process, as the host sees it."""
    return int(engine.inspect(engine.container(service), "{{.State.Pid}}"))


def _a_worker(supervisor: int) -> int:
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    workers = [int(c) for c in children if b"spawn_main" in _cmdline(int(c))]
    assert len(workers) == 2, workers  # MNIST_WORKERS=2 in docker-compose.yml
    return workers[0]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def _restarts(engine: Engine, service: str) -> int:
    return int(engine.inspect(engine.container(service), "{{.RestartCount}}"))


def _nothing_left_broken(engine: Engine, gateway: str) -> None:
    """Every service running and healthy, the gateway with both workers and its backend up."""
    for service in ("tfserving", "gateway"):
        wait_for(lambda s=service: engine.health(s) == "healthy", f"{service} healthy", 60)
    assert _a_worker(_main_pid(engine, "gateway"))
    metrics = httpx.get(gateway + "/metrics", timeout=5).text
    assert 'mnist_backend_target_up{target="tfserving:8500"} 1.0' in metrics
    running = {c["Labels"]["com.docker.compose.service"] for c in engine.containers(running=True)}
    assert running == {"tfserving", "gateway"}, running
    assert PROJECT in engine.container("gateway")
