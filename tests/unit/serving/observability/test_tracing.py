"""OpenTelemetry traces, on an in-memory exporter: a request continues the caller's W3C trace
context over REST and gRPC, has preprocessing, queue and model child spans, and the batch that
served it is one span linked to every request span in it. Off, nothing is made."""

from __future__ import annotations

import asyncio
import logging
import re

import numpy as np
import pytest

from mnist_serving.observability.access_log import ACCESS_LOGGER
from mnist_serving.observability.tracing import Tracing
from mnist_serving.settings import Settings
from tests.helpers.fakes import digit_image, loader, version_folders
from tests.helpers.gateways import in_process
from tests.helpers.tracing import PARENT, TRACE, TRACEPARENT, spans_by_name

# A JSON access line's fields, as they have always been with tracing off.
ACCESS_FIELDS = {
    "request_id",
    "protocol",
    "route",
    "model_version",
    "code",
    "http_status",
    "images",
    "latency_ms",
    "queue_ms",
    "model_ms",
    "peer",
    "key",
    "time",
}


async def test_a_rest_request_continues_the_callers_trace(tmp_path, spans) -> None:
    tracing, exporter = spans
    settings = Settings(model_dir=version_folders(tmp_path, 1))
    async with in_process(settings, load=loader(), tracing=tracing) as api:
        frames = digit_image(3).tobytes()
        headers = {"Content-Type": "application/octet-stream", "traceparent": TRACEPARENT}
        assert (
            await api.post("/v1/digits:classify", content=frames, headers=headers)
        ).status_code == 200
    named = spans_by_name(exporter)
    (server,) = named["rest classify"]
    assert format(server.context.trace_id, "032x") == TRACE
    assert format(server.parent.span_id, "016x") == PARENT
    assert server.attributes["mnist.code"] == "OK" and server.attributes["mnist.images"] == 1
    for child in ("preprocess", "queue", "model"):
        (span,) = named[child]
        assert (
            span.parent.span_id == server.context.span_id
            and span.context.trace_id == server.context.trace_id
        )
    (batch,) = named["model batch"]
    assert [link.context.span_id for link in batch.links] == [server.context.span_id]
    assert batch.parent.span_id == server.context.span_id  # a lone request: one trace


async def test_one_batch_span_links_every_request_it_served(tmp_path, spans) -> None:
    tracing, exporter = spans
    settings = Settings(
        model_dir=version_folders(tmp_path, 1), batch_timeout_micros=50_000, num_batch_threads=1
    )
    async with in_process(settings, load=loader(delay=0.05), tracing=tracing) as api:
        octet = {"Content-Type": "application/octet-stream"}
        answers = await asyncio.gather(
            *(
                api.post("/v1/digits:classify", content=digit_image(d).tobytes(), headers=octet)
                for d in (1, 2, 3)
            )
        )
        assert all(a.status_code == 200 for a in answers)
    named = spans_by_name(exporter)
    requests = {s.context.span_id for s in named["rest classify"]}
    linked = {link.context.span_id for batch in named["model batch"] for link in batch.links}
    assert linked == requests and len(requests) == 3
    assert len(named["model batch"]) < 3  # some requests shared a batch
    assert len({s.context.trace_id for s in named["rest classify"]}) == 3  # three traces
    for batch in named["model batch"]:  # each a child of its first request, linked to all
        assert batch.parent.span_id == batch.links[0].context.span_id


async def test_tracing_off_makes_nothing(tmp_path) -> None:
    off = Tracing()
    assert not off.enabled
    with off.server_span("rest", "classify", "id", {"traceparent": TRACEPARENT}) as span:
        assert span is None
    async with in_process(
        Settings(model_dir=version_folders(tmp_path, 1)), load=loader(), tracing=off
    ) as api:
        octet = {"Content-Type": "application/octet-stream"}
        answer = await api.post(
            "/v1/digits:classify", content=np.zeros(784, np.uint8).tobytes(), headers=octet
        )
        assert answer.status_code in (200, 400)


def test_the_environment_decides(caplog) -> None:
    assert not Tracing.from_environment({}).enabled
    assert not Tracing.from_environment({"OTEL_TRACES_EXPORTER": "none"}).enabled
    assert Tracing.from_environment({"OTEL_TRACES_EXPORTER": "console"}).enabled
    assert Tracing.from_environment({"OTEL_TRACES_EXPORTER": "otlp"}).enabled
    with caplog.at_level(logging.WARNING):
        assert not Tracing.from_environment({"OTEL_TRACES_EXPORTER": "zipkin"}).enabled
    assert "not otlp, console or none" in caplog.text


async def test_the_latency_histogram_carries_trace_ids_as_exemplars(tmp_path, spans) -> None:
    tracing, _ = spans
    async with in_process(
        Settings(model_dir=version_folders(tmp_path, 1)), load=loader(), tracing=tracing
    ) as api:
        headers = {"Content-Type": "application/octet-stream", "traceparent": TRACEPARENT}
        await api.post("/v1/digits:classify", content=digit_image(5).tobytes(), headers=headers)
        plain = await api.get("/metrics")
        openmetrics = await api.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert "# {" not in plain.text  # the Prometheus text format has no exemplars
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    buckets = [
        line
        for line in openmetrics.text.splitlines()
        if line.startswith("mnist_request_duration_seconds_bucket") and "# {" in line
    ]
    assert buckets and f'trace_id="{TRACE}"' in buckets[0]
    assert openmetrics.text.rstrip().endswith("# EOF")


def _access_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS_LOGGER]


@pytest.mark.parametrize("sampled", [True, False])
async def test_json_access_lines_carry_the_server_spans_ids(tmp_path, spans, caplog, sampled):
    tracing, exporter = spans
    settings = Settings(model_dir=version_folders(tmp_path, 1), access_log="json")
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    # The caller's flags decide sampling (the SDK's default sampler follows the parent).
    parent = TRACEPARENT if sampled else TRACEPARENT[:-2] + "00"
    headers = {"Content-Type": "application/octet-stream", "traceparent": parent}
    async with in_process(settings, load=loader(), tracing=tracing) as api:
        await api.post("/v1/digits:classify", content=digit_image(3).tobytes(), headers=headers)
        await api.get("/v1/models/mnist")  # its own trace: no caller's context
    (classify, status) = [r.fields for r in _access_lines(caplog)]
    assert classify["trace_id"] == TRACE and re.fullmatch(r"[0-9a-f]{16}", classify["span_id"])
    assert classify["span_id"] != PARENT  # the gateway's own server span, the caller's child
    if sampled:
        (server,) = spans_by_name(exporter)["rest classify"]
        assert classify["span_id"] == format(server.context.span_id, "016x")
    else:
        # Not sampled: nothing of that request was exported, yet its line joins its trace.
        assert "rest classify" not in spans_by_name(exporter)
    assert re.fullmatch(r"[0-9a-f]{32}", status["trace_id"]) and status["trace_id"] != TRACE


async def test_text_access_lines_end_with_the_ids(tmp_path, spans, caplog) -> None:
    tracing, exporter = spans
    settings = Settings(model_dir=version_folders(tmp_path, 1), access_log="text")
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    headers = {"Content-Type": "application/octet-stream", "traceparent": TRACEPARENT}
    async with in_process(settings, load=loader(), tracing=tracing) as api:
        await api.post("/v1/digits:classify", content=digit_image(3).tobytes(), headers=headers)
    (line,) = [r.getMessage() for r in _access_lines(caplog)]
    (server,) = spans_by_name(exporter)["rest classify"]
    assert line.endswith(f" trace_id={TRACE} span_id={format(server.context.span_id, '016x')}")


@pytest.mark.parametrize("style", ["json", "text"])
async def test_without_tracing_the_access_line_is_unchanged(tmp_path, caplog, style) -> None:
    settings = Settings(model_dir=version_folders(tmp_path, 1), access_log=style)
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    headers = {"Content-Type": "application/octet-stream", "traceparent": TRACEPARENT}
    async with in_process(settings, load=loader(), tracing=Tracing()) as api:
        await api.post("/v1/digits:classify", content=digit_image(3).tobytes(), headers=headers)
    (record,) = _access_lines(caplog)
    if style == "json":
        assert set(record.fields) == ACCESS_FIELDS
    else:
        assert "trace_id" not in record.getMessage() and "span_id" not in record.getMessage()
