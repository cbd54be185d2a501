"""TF Serving's metric names derived from the gateway's, and refusal series that start at 0."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mnist_serving.observability.metrics import (
    PROTOCOLS,
    REFUSAL_REASONS,
    create_metrics,
    tfserving_registry,
)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_tfserving_names_count_predict_only_and_latency_in_microseconds() -> None:
    metrics = create_metrics(process=False)
    for protocol, code, seconds in (("rest", "OK", 0.002), ("grpc", "OK", 0.0004),
                                    ("rest", "INVALID_ARGUMENT", 0.001)):  # fmt: skip
        metrics.requests.labels(protocol, "predict", code).inc()
        metrics.request_latency.labels(protocol, "predict", code).observe(seconds)
    metrics.requests.labels("rest", "classify", "OK").inc()  # the digits API: not TF Serving's
    metrics.request_latency.labels("rest", "classify", "OK").observe(0.001)

    text = generate_latest(tfserving_registry(metrics, "mnist")).decode()
    found = _samples(text)
    count = ":tensorflow:serving:request_count"
    assert found[(count, (("model_name", "mnist"), ("status", "OK")))] == 2
    assert found[(count, (("model_name", "mnist"), ("status", "INVALID_ARGUMENT")))] == 1
    assert "request_count_total" not in text  # TF Serving's name has no suffix
    latency = ":tensorflow:serving:request_latency"
    rest = (("API", "predict"), ("entrypoint", "REST"), ("model_name", "mnist"))
    grpc = (("API", "Predict"), ("entrypoint", "GRPC"), ("model_name", "mnist"))
    assert found[(f"{latency}_count", rest)] == 1  # the failed one is not in the histogram
    assert abs(found[(f"{latency}_sum", rest)] - 2000.0) < 1e-6  # 2 ms in µs
    assert found[(f"{latency}_bucket", (*grpc[:2], ("le", "500.0"), grpc[2]))] == 1
    assert found[(f"{latency}_bucket", (*grpc[:2], ("le", "250.0"), grpc[2]))] == 0


def test_refusal_series_exist_at_zero_before_any_refusal() -> None:
    metrics = create_metrics(process=False)
    found = _samples(generate_latest(metrics.registry).decode())
    for protocol in PROTOCOLS:
        for reason in REFUSAL_REASONS:
            key = ("mnist_requests_refused_total", (("protocol", protocol), ("reason", reason)))
            assert found[key] == 0


def test_the_core_refuses_only_with_reasons_the_metrics_know() -> None:
    from mnist_serving.core.inference import REFUSAL_REASONS as CORE_REASONS

    assert set(CORE_REASONS.values()) <= set(REFUSAL_REASONS)
