"""The gateway's metric set: refusal series that start at 0, reasons the core can give."""

from __future__ import annotations

from prometheus_client import generate_latest

from mnist_serving.observability.metrics import (
    PROTOCOLS,
    REFUSAL_REASONS,
    create_metrics,
)
from tests.helpers.metrics import samples_of


def test_refusal_series_exist_at_zero_before_any_refusal() -> None:
    metrics = create_metrics(process=False)
    found = samples_of(generate_latest(metrics.registry).decode())
    for protocol in PROTOCOLS:
        for reason in REFUSAL_REASONS:
            key = ("mnist_requests_refused_total", (("protocol", protocol), ("reason", reason)))
            assert found[key] == 0


def test_the_core_refuses_only_with_reasons_the_metrics_know() -> None:
    from mnist_serving.core.accounting import REFUSAL_REASONS as CORE_REASONS

    assert set(CORE_REASONS.values()) <= set(REFUSAL_REASONS)
