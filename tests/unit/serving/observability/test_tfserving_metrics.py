"""TF Serving's metric names, derived from the gateway's at scrape time."""

from __future__ import annotations

from prometheus_client import generate_latest

from mnist_serving.observability.metrics import (
    create_metrics,
)
from mnist_serving.observability.tfserving_metrics import tfserving_registry
from tests.helpers.metrics import samples_of


def test_tfserving_names_count_predict_only_and_latency_in_microseconds() -> None:
    metrics = create_metrics(process=False)
    for protocol, code, seconds in (
        ("rest", "OK", 0.002),
        ("grpc", "OK", 0.0004),
        ("rest", "INVALID_ARGUMENT", 0.001),
    ):
        metrics.requests.labels(protocol, "predict", code).inc()
        metrics.request_latency.labels(protocol, "predict", code).observe(seconds)
    metrics.requests.labels("rest", "classify", "OK").inc()  # the digits API: not TF Serving's
    metrics.request_latency.labels("rest", "classify", "OK").observe(0.001)

    text = generate_latest(tfserving_registry(metrics, "mnist")).decode()
    found = samples_of(text)
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
