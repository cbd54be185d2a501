"""A real Prometheus (Debian's package) scrapes a real gateway under load; every PromQL
expression in the dashboard and the alert rules runs, and the gateway's panels have data."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
import yaml

from mnist_contract.protos import digits_pb2, digits_pb2_grpc
from tests.helpers.processes import Server, free_port, start_gateway, stop_gateway, wait_for_ok

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


@pytest.fixture(scope="module")
def gateway(model_dir) -> Iterator[Server]:
    # Two workers, as a multi-core default runs: Prometheus scrapes whichever answers, and the
    # dashboard's worker panel has data.
    srv = start_gateway(model_dir, "--workers", "2")
    yield srv
    stop_gateway(srv)


@pytest.fixture(scope="module")
def prometheus(gateway, tmp_path_factory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    assert binary, "prometheus is not installed (.ci/run installs it with apt-get)"
    work = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(DEPLOY / "prometheus" / "alerts.yml")],
        "scrape_configs": [
            {
                "job_name": "mnist-gateway",
                "static_configs": [{"targets": [gateway.url.removeprefix("http://")]}],
            }
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = (work / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_ok(url + "/-/ready", process, work / "prometheus.log", seconds=30)
        yield url
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def _load(gateway: Server, digits, seconds: float) -> None:
    """A short mixed load: REST and gRPC, good and bad requests."""
    x = digits["x_test"]
    stop = time.monotonic() + seconds
    with httpx.Client(base_url=gateway.url) as http, grpc.insecure_channel(gateway.grpc) as channel:
        stub = digits_pb2_grpc.DigitClassifierStub(channel)
        i = 0
        while time.monotonic() < stop:
            http.post(
                "/v1/digits:classify",
                content=x[i % 500].tobytes(),
                headers={"Content-Type": "application/octet-stream"},
            )
            request = digits_pb2.ClassifyRequest()
            request.images.add(raw=x[(i + 1) % 500].tobytes())
            stub.Classify(request, timeout=5)
            if i % 10 == 0:
                http.post("/v1/digits:classify", json={"images": []})  # a 400, for the error panels
            i += 1


def _query(prometheus: str, expr: str) -> list:
    answer = httpx.get(prometheus + "/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", f"{expr}: {answer.get('error')}"
    return answer["data"]["result"]


def test_dashboard_and_alert_expressions_run_and_gateway_panels_have_data(
    prometheus, gateway, digits
) -> None:
    _load(gateway, digits, 8)
    time.sleep(3)  # two more scrapes after the load
    targets = httpx.get(prometheus + "/api/v1/targets").json()["data"]["activeTargets"]
    assert [t["health"] for t in targets] == ["up"]

    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "mnist.json").read_text())
    empty = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            result = _query(prometheus, target["expr"])
            if not result and ":tensorflow:" not in target["expr"]:
                empty.append(f"{panel['title']}: {target['expr']}")
    # Refusals only appear under overload, mirrors with a shadow version configured (this
    # gateway has none); everything else must show this load.
    assert [e for e in empty if "refused" not in e and "mnist_shadow_" not in e] == [], empty

    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            _query(prometheus, rule["expr"])
    loaded = httpx.get(prometheus + "/api/v1/rules").json()["data"]["groups"]
    health = {r["name"]: r["health"] for g in loaded for r in g["rules"]}
    assert len(health) == 11 and set(health.values()) <= {"ok", "unknown"}

    throughput = _query(
        prometheus, 'sum by (protocol) (rate(mnist_requests_total{route=~"predict|classify"}[1m]))'
    )
    assert {r["metric"]["protocol"] for r in throughput} == {"rest", "grpc"}
    assert all(float(r["value"][1]) > 0 for r in throughput)
