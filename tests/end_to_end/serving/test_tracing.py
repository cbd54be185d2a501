"""Traces across real servers: gRPC metadata carries the caller's context, and a chain of gateways
is one trace."""

from __future__ import annotations

import json
import time
from pathlib import Path

import grpc
import httpx

from mnist_contract.protos import open_inference_pb2 as v2_pb
from mnist_contract.protos import open_inference_pb2_grpc as v2_grpc
from mnist_serving.adapters.grpc.server import GrpcServer
from mnist_serving.build import build_gateway
from mnist_serving.settings import Settings
from tests.helpers.fakes import digit_image, loader, version_folders
from tests.helpers.processes import start_gateway, stop_gateway
from tests.helpers.tracing import PARENT, TRACE, TRACEPARENT, spans_by_name


def _spans_in(log: Path) -> list[dict]:
    """The spans a gateway's console exporter printed (JSON objects among its log lines)."""
    text, decoder, found, at = log.read_text(), json.JSONDecoder(), [], 0
    while (at := text.find("{\n", at)) >= 0:
        try:
            span, end = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            at += 1
            continue
        if isinstance(span, dict) and "context" in span:
            found.append(span)
        at = end
    return found


async def test_a_grpc_request_takes_the_trace_context_from_metadata(tmp_path, spans) -> None:
    tracing, exporter = spans
    settings = Settings(model_dir=version_folders(tmp_path, 1))
    gateway = build_gateway(settings, load=loader(), tracing=tracing)
    async with gateway.model_loaded():
        server = GrpcServer(gateway.core, gateway.accounting, settings, gateway.core.readiness)
        port = server.bind("127.0.0.1", 0, None)
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                request = v2_pb.ModelInferRequest(model_name="mnist")
                request.inputs.add(name="images", datatype="UINT8", shape=[1, 784])
                request.raw_input_contents.append(digit_image(7).tobytes())
                stub = v2_grpc.GRPCInferenceServiceStub(channel)
                await stub.ModelInfer(request, metadata=(("traceparent", TRACEPARENT),), timeout=10)
        finally:
            await server.stop(1)
    (span,) = spans_by_name(exporter)["v2_grpc infer"]
    assert format(span.context.trace_id, "032x") == TRACE
    assert format(span.parent.span_id, "016x") == PARENT


def test_a_chain_of_gateways_is_one_trace(model_dir: Path) -> None:
    env = {
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_SERVICE_NAME": "gateway",
    }
    a = start_gateway(model_dir, env=env)
    b = start_gateway(model_dir, "--backend", "tfserving", "--tfserving-targets", a.grpc, env=env)
    try:
        headers = {"Content-Type": "application/octet-stream", "traceparent": TRACEPARENT}
        answer = httpx.post(
            b.url + "/v1/digits:classify", content=bytes(784), headers=headers, timeout=10
        )
        assert answer.status_code == 200
        deadline = time.monotonic() + 10  # the exporters write every 100 ms
        while time.monotonic() < deadline:
            b_spans = [s for s in _spans_in(b.log) if s["context"]["trace_id"] == f"0x{TRACE}"]
            a_spans = [s for s in _spans_in(a.log) if s["context"]["trace_id"] == f"0x{TRACE}"]
            if len(b_spans) >= 3 and a_spans:
                break
            time.sleep(0.2)
    finally:
        stop_gateway(b)
        stop_gateway(a)
    names = {s["name"]: s for s in b_spans}
    assert {"rest classify", "model batch", "tensorflow.serving.PredictionService/Predict"} <= set(
        names
    )
    client = names["tensorflow.serving.PredictionService/Predict"]
    assert client["kind"] == "SpanKind.CLIENT"
    (served,) = [s for s in a_spans if s["name"] == "grpc predict"]
    assert served["parent_id"] == client["context"]["span_id"]  # A continues B's call
