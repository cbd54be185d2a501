"""mnist-loadtest: a short bounded run (about 10 s) against a real gateway, every user type."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.helpers.processes import Server, start_gateway, stop_gateway


@pytest.fixture(scope="module")
def gateway(model_dir) -> Iterator[Server]:
    srv = start_gateway(model_dir)
    yield srv
    stop_gateway(srv)


def test_short_step_load_run_with_every_user_type(gateway, tmp_path, fixture_npz) -> None:
    out = tmp_path / "report"
    env = {
        **os.environ,
        "MNIST_LOADTEST_DATA": str(fixture_npz),
        # The gateway speaks TF Serving's API too, so it stands in for plain TF Serving here.
        "MNIST_TFSERVING_REST": gateway.url,
        "MNIST_TFSERVING_GRPC": gateway.grpc,
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "mnist_client.loadtest.runner",
            "--host",
            gateway.url,
            "--grpc",
            gateway.grpc,
            "--steps",
            "4,8",
            "--step-seconds",
            "5",
            "--out",
            str(out),
            "--users",
            "RestUser,GatewayGrpcUser,TFServingRestUser,TFServingGrpcUser,V2RestUser,V2GrpcUser",
            "--max-error-rate",
            "0",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    kinds = summary["per_request_type"]
    for name in (
        "POST digits rest [1]",
        "grpc digits grpc [1]",
        "POST tfserving rest [1]",
        "grpc tfserving grpc [1]",
        "POST v2 rest [1]",
        "grpc v2 grpc [1]",
    ):
        assert kinds[name]["requests"] >= 20, (name, kinds.get(name))
        assert kinds[name]["failures"] == 0
    assert any(name.endswith("[32]") for name in kinds)
    assert summary["aggregated"]["failures"] == 0 and summary["aggregated"]["requests"] > 300
    assert (out / "report.html").stat().st_size > 1000
    assert (out / "load.png").stat().st_size > 1000
    assert (out / "locust_stats_history.csv").exists()
