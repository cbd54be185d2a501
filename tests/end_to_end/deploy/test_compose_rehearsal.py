"""``docker compose up`` rehearsed with local processes (no Docker here): the trainer's
entrypoint, a TF Serving stand-in, the gateway as compose configures it, Prometheus with the
stack's config and rules, and Locust headless with the compose service's arguments.

It catches wrong commands, variable names, ports and paths in the compose file, the
Dockerfiles and the Prometheus config, though no image is built. Grafana is not run (not in
Debian); its files are checked offline in test_offline_validation.py.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests.conftest import FIXTURE
from tests.helpers.compose_stack import DEPLOY, compose_config
from tests.helpers.rehearsal import Stack, prometheus, query, standin_tfserving

# The compose variables a user would set for a quick stack check; nothing else is changed.
QUICK = {
    "MNIST_TRAIN_LIMIT": "1500",
    "MNIST_TRAIN_EPOCHS": "2",
    "MNIST_TRAIN_DATA": str(FIXTURE),
    "LOCUST_USERS": "4",
    "LOCUST_RUN_TIME": "10s",
}

pytestmark = pytest.mark.end_to_end


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    running = Stack(compose_config(QUICK), tmp_path_factory.mktemp("stack"))
    yield running
    running.stop()


def test_the_stack_comes_up_serves_and_is_monitored(stack: Stack) -> None:
    # trainer: its image's entrypoint script with compose's environment, into the volume.
    trainer = stack.start("trainer", stack.command("trainer"), stack.environment("trainer"))
    assert trainer.wait(600) == 0, stack.log("trainer")
    models = stack.paths("trainer")["/models"]
    card = json.loads((DEPLOY.parent / models / "mnist" / "1" / "model_card.json").read_text())
    assert card["recipe"]["name"] == "robust" and card["hyperparameters"]["epochs"] == 2
    again = stack.start("trainer", stack.command("trainer"), stack.environment("trainer"))
    assert again.wait(120) == 0 and "already has version(s) 1" in stack.log("trainer")

    standin_tfserving(stack)
    stack.health("tfserving")  # compose's own bash /dev/tcp check, asking for AVAILABLE

    gateway_env = stack.environment("gateway", MNIST_HOST="127.0.0.1")
    assert gateway_env["MNIST_BACKEND"] == "tfserving"
    assert gateway_env["MNIST_TFSERVING_TARGETS"] == f"127.0.0.1:{stack.port('tfserving', 8500)}"
    stack.start("gateway", stack.command("gateway") or ["mnist-serve"], gateway_env)
    stack.health("gateway")  # the Dockerfile's HEALTHCHECK: /readyz, backend reachable
    gateway = f"http://127.0.0.1:{stack.port('gateway', 8080)}"
    digits = _digits()
    answer = httpx.post(
        gateway + "/v1/digits:classify",
        content=digits[:4].tobytes(),
        headers={"Content-Type": "application/octet-stream"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert httpx.post(gateway + "/v1/digits:classify", json={"images": []}).status_code == 400

    url = prometheus(stack)
    locust = stack.start(
        "locust",
        [*stack.command("locust"), "--csv", str(stack.work / "locust")],
        stack.environment("locust"),
    )
    assert locust.wait(120) == 0, stack.log("locust")
    _assert_locust_served_without_failures(stack)
    time.sleep(12)  # two more scrapes after the load

    targets = httpx.get(url + "/api/v1/targets").json()["data"]["activeTargets"]
    assert sorted((t["labels"]["job"], t["health"]) for t in targets) == [
        ("mnist-gateway", "up"),
        ("tfserving", "up"),
    ], targets
    _assert_rules_loaded(url)
    _assert_every_dashboard_query_has_data(url)


def _digits():
    import numpy as np

    with np.load(FIXTURE) as data:
        return np.asarray(data["x_test"][:64])


def _assert_locust_served_without_failures(stack: Stack) -> None:
    with (stack.work / "locust_stats.csv").open() as fh:
        rows = {row["Name"]: row for row in csv.DictReader(fh)}
    total = rows["Aggregated"]
    assert int(total["Request Count"]) > 20, rows
    assert int(total["Failure Count"]) == 0, rows
    # Both the gateway and plain TF Serving (the stand-in) were loaded, as compose asks.
    assert any(name.startswith("tfserving") for name in rows), sorted(rows)


def _assert_rules_loaded(url: str) -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    expected = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    loaded = httpx.get(url + "/api/v1/rules").json()["data"]["groups"]
    health = {r["name"]: r["health"] for g in loaded for r in g["rules"]}
    assert set(health) == expected and set(health.values()) <= {"ok", "unknown"}, health


# The stack's gateway forwards to TF Serving, whose version folders it does not read: it has
# no drift reference and says so (docs/drift.md), so its drift scores are absent by design;
# and it mirrors nothing (the stack sets no shadow_weight), so the shadow panel is empty.
ABSENT_BY_DESIGN = ("mnist_input_drift", "mnist_shadow_")


def _assert_every_dashboard_query_has_data(url: str) -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "mnist.json").read_text())
    empty = [
        f"{panel['title']}: {target['expr']}"
        for panel in dashboard["panels"]
        for target in panel["targets"]
        if not query(url, target["expr"])
    ]
    expected = [e for e in empty if any(m in e for m in ABSENT_BY_DESIGN)]
    assert empty == expected and len(expected) == 4, empty  # drift score, alarm; two shadow
    assert query(url, "max(mnist_drift_window_images)"), "the window fills all the same"
