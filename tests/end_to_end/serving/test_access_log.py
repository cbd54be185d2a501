"""Request ids and access logs: the id round-trips on both protocols, the JSON log parses line by
line with every field for successes, refusals and errors, keys never reach the log, probes stay
out unless asked, and every other log line takes the same format."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest

from mnist_contract.protos import open_inference_pb2 as v2_pb
from mnist_contract.protos import open_inference_pb2_grpc as v2_grpc
from tests.helpers.processes import Server, start_gateway, stop_gateway

KEY = "ci-key-0123456789abcdef"
FIELDS = {
    "time",
    "level",
    "logger",
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
}


@pytest.fixture(scope="module")
def logged(model_dir: Path) -> Iterator[Server]:
    server = start_gateway(
        model_dir,
        "--access-log",
        "json",
        "--log-level",
        "info",
        "--api-keys",
        json.dumps({"ci": KEY}),
    )
    yield server
    stop_gateway(server)


def _lines(server: Server) -> list[dict]:
    return [json.loads(line) for line in server.log.read_text().splitlines() if line.strip()]


def test_the_json_log_holds_every_request_and_never_a_key(logged: Server) -> None:
    frames = np.zeros((2, 28, 28), np.uint8).tobytes()
    keyed = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/octet-stream"}
    ok = httpx.post(
        logged.url + "/v1/digits:classify",
        content=frames,
        headers={**keyed, "X-Request-ID": "rest-ok-1"},
        timeout=10,
    )
    assert ok.status_code == 200 and ok.headers["x-request-id"] == "rest-ok-1"
    refused = httpx.post(logged.url + "/v1/digits:classify", content=frames, timeout=10)
    assert refused.status_code == 401 and len(refused.headers["x-request-id"]) == 32
    bad = httpx.post(logged.url + "/v1/digits:classify", content=b"xyz", headers=keyed, timeout=10)
    assert bad.status_code == 400
    assert httpx.get(logged.url + "/healthz", timeout=10).status_code == 200  # not logged
    with grpc.insecure_channel(logged.grpc) as channel:
        stub = v2_grpc.GRPCInferenceServiceStub(channel)
        request = v2_pb.ModelInferRequest(model_name="mnist")
        request.inputs.add(name="images", datatype="UINT8", shape=[1, 784])
        request.raw_input_contents.append(bytes(784))
        _, call = stub.ModelInfer.with_call(
            request,
            metadata=(("x-request-id", "grpc-ok-1"), ("authorization", f"Bearer {KEY}")),
            timeout=10,
        )
        assert dict(call.trailing_metadata())["x-request-id"] == "grpc-ok-1"
    lines = _lines(logged)  # every line of the gateway's log is one JSON object
    access = {
        line["request_id"]: line for line in lines if line["logger"] == "mnist_serving.access"
    }
    assert len(access) == 4 and all(set(line) >= FIELDS for line in access.values())
    rest = access["rest-ok-1"]
    assert (rest["protocol"], rest["route"], rest["code"], rest["http_status"]) == (
        "rest",
        "classify",
        "OK",
        200,
    )
    assert rest["images"] == 2 and rest["model_version"] == 1 and rest["key"] == "ci"
    assert rest["model_ms"] > 0 and rest["queue_ms"] >= 0 and rest["peer"].startswith("127.0.0.1:")
    codes = {(line["code"], line["http_status"]) for line in access.values()}
    assert {("UNAUTHENTICATED", 401), ("INVALID_ARGUMENT", 400)} <= codes
    grpc_line = access["grpc-ok-1"]
    assert grpc_line["protocol"] == "v2_grpc" and grpc_line["http_status"] is None
    assert not any(line.get("route") == "healthz" for line in access.values())
    assert any(line["logger"].startswith("uvicorn") for line in lines)  # uvicorn's too, as JSON
    assert KEY not in logged.log.read_text()
