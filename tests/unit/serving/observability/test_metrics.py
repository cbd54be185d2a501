"""The gateway's metric set: refusal series that start at 0, one for every refusal reason."""

from __future__ import annotations

from prometheus_client import generate_latest

from mnist_serving.errors import refusal_reasons
from mnist_serving.observability.metrics import PROTOCOLS, create_metrics
from tests.helpers.metrics import samples_of


def test_refusal_series_exist_at_zero_before_any_refusal() -> None:
    metrics = create_metrics(process=False)
    found = samples_of(generate_latest(metrics.registry).decode())
    for protocol in PROTOCOLS:
        for reason in refusal_reasons():
            key = ("mnist_requests_refused_total", (("protocol", protocol), ("reason", reason)))
            assert found[key] == 0


def test_the_refusal_reasons_are_the_error_classes_own() -> None:
    # The reason label's values, which dashboards and alert rules name.
    assert set(refusal_reasons()) == {
        "queue_full",
        "queue_delay",
        "in_flight_limit",
        "rate_limited",
        "unauthenticated",
        "slow_body",
        "permission_denied",
    }
