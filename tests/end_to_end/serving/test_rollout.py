"""The automatic rollout on real gateways (``--rollout auto``) and real candidate models: a good
one promoted under wrk's load with two workers and not one failed request, one that answers
other digits stopped in shadow, a slow one rolled back on latency, and a rollout paused by an
operator (``mnist-serve rollout``, a key with the admin scope) that resumes at the same step
after a restart."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from benchmarks.cload import wrk_post
from tests.helpers.candidates import Kind, publish_candidate
from tests.helpers.processes import Server, start_gateway, stop_gateway
from tests.helpers.traffic import Traffic
from tests.helpers.versions import wait_for

OCTET = {"Content-Type": "application/octet-stream"}
CLASSIFY = "/v1/digits:classify"
ROLLOUT = {
    "shadow_weight": 1.0,
    "shadow_images": 100,
    "step_requests": 40,
    "min_step_seconds": 1,
    "canary_steps": [0.05, 0.25, 0.5],
}
OPS_KEY, APP_KEY = "ops-key-0123456789abcdef", "app-key-0123456789abcdef"


@pytest.fixture
def models(tmp_path: Path, model_dir: Path) -> Path:
    """version 1 and a config asking for quick steps (the defaults hold each step 10 s)."""
    publish_candidate(model_dir / "mnist" / "1", tmp_path, 1, "same")
    (tmp_path / "config.json").write_text(
        json.dumps({"version_policy": {"latest": 1}, "rollout": ROLLOUT})
    )
    return tmp_path


def _start(models: Path, *flags: str, workers: str = "1") -> Server:
    config = str(models / "config.json")
    return start_gateway(
        models,
        *("--rollout", "auto", "--model-config-file", config, "--model-poll-seconds", "0.2"),
        *flags,
        workers=workers,
    )


def _status(server: Server, key: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return dict(httpx.get(server.url + "/v1/models/mnist/rollout", headers=headers).json())


def _clients(server: Server, body: bytes, key: str | None = None) -> Traffic:
    """One client sending a digit at a time (each answer's status and version kept)."""
    headers = {"Authorization": f"Bearer {key}"} if key else None
    return Traffic.rest(server.url, body, workers=1, headers=headers)


def _body(digits) -> bytes:
    return np.ascontiguousarray(digits["x_test"][:1]).tobytes()


def test_a_good_candidate_is_promoted_under_load_without_a_failed_request(
    models: Path, model_dir: Path, digits, figures
) -> None:
    server = _start(models, workers="2")
    try:
        wait_for(lambda: _status(server)["phase"] == "stable", "the rollout's first state")
        results: dict = {}
        load = threading.Thread(
            target=lambda: results.update(
                wrk_post(server.url + CLASSIFY, _body(digits), OCTET, 8, 30.0)
            )
        )
        load.start()
        time.sleep(2)
        published = time.monotonic()
        publish_candidate(model_dir / "mnist" / "1", models, 2, "same")
        wait_for(lambda: _status(server)["phase"] == "promoted", "the promotion", 40)
        decided = time.monotonic() - published
        load.join(60)
        assert results["errors"] == 0 and results["non_2xx"] == 0, results
        status = _status(server)
        assert (status["stable"], status["candidate"]) == (2, None)
        answers = {
            httpx.post(server.url + CLASSIFY, content=_body(digits), headers=OCTET).json()[
                "model_version"
            ]
            for _ in range(5)
        }
        assert answers == {2}
        figures["rollout"] = {"good_candidate_decided_s": round(decided, 1), **results}
    finally:
        stop_gateway(server)


@pytest.mark.parametrize(("kind", "gate"), [("shifted", "agreement"), ("slow", "p99_latency")])
def test_a_bad_or_slow_candidate_is_rolled_back_and_clients_keep_stable(
    models: Path, model_dir: Path, digits, kind: Kind, gate: str
) -> None:
    server = _start(models)
    try:
        wait_for(lambda: _status(server)["phase"] == "stable", "the rollout's first state")
        with _clients(server, _body(digits)) as clients:
            publish_candidate(model_dir / "mnist" / "1", models, 2, kind)
            wait_for(lambda: _status(server)["phase"] == "rolled_back", "the rollback", 60)
            rolled_back = time.monotonic()
            time.sleep(1)
        status = _status(server)
        assert gate in status["reason"] and status["stable"] == 1, status
        assert {o.status for o in clients.outcomes} == {"200"}
        after = clients.between(rolled_back)
        assert after and {o.version for o in after} == {1}
        if kind == "shifted":  # stopped before any client saw it
            assert {o.version for o in clients.outcomes} == {1}
    finally:
        stop_gateway(server)


def test_an_operator_pauses_and_a_restart_resumes_at_the_same_step(
    models: Path, model_dir: Path, digits
) -> None:
    keys = models / "keys.txt"
    keys.write_text(f"app:{APP_KEY}\nops:{OPS_KEY} admin\n")
    server = _start(models, "--api-keys-file", str(keys))
    try:
        with _clients(server, _body(digits), APP_KEY):
            publish_candidate(model_dir / "mnist" / "1", models, 2, "same")
            wait_for(lambda: _status(server, APP_KEY)["phase"] == "canary", "the canary", 60)
            assert _command(server, "pause", APP_KEY).returncode == 1  # no admin scope
            paused = _command(server, "pause", OPS_KEY)
            assert paused.returncode == 0, paused.stderr
            step = json.loads(paused.stdout)["step"]
        stop_gateway(server)
        server = _start(models, "--api-keys-file", str(keys))
        status = _status(server, APP_KEY)
        assert (status["phase"], status["step"], status["paused"]) == ("canary", step, True)
        with _clients(server, _body(digits), APP_KEY) as clients:
            wait_for(lambda: {o.version for o in clients.outcomes[-20:]} == {1, 2}, "the split", 30)
            assert _command(server, "resume", OPS_KEY).returncode == 0
            wait_for(lambda: _status(server, APP_KEY)["phase"] == "promoted", "promotion", 60)
    finally:
        stop_gateway(server)


def _command(server: Server, action: str, key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mnist_serving.cli", "rollout", action, "--url", server.url],
        env={"MNIST_API_KEY": key, "PATH": "/usr/bin:/bin", **_python_path()},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _python_path() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k == "PYTHONPATH"}
