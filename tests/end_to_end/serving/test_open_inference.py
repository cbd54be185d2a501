"""The Open Inference Protocol face, with what the official clients never send: malformed
binary framing, wrong element counts, parameters we refuse, the protocol label in metrics, keys,
limits, health and reflection. (The official clients' own suites: test_open_inference_clients.)"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from mnist_contract.open_inference import HEADER_LENGTH
from mnist_contract.protos import open_inference_pb2 as pb
from mnist_contract.protos import open_inference_pb2_grpc as pb_grpc
from mnist_serving.settings import Settings
from tests.helpers.gateways import in_process
from tests.helpers.processes import Server, start_gateway, stop_gateway

INFER = "/v2/models/mnist/infer"


def _tensor(images: np.ndarray, datatype: str = "UINT8", **extra: Any) -> dict[str, Any]:
    return {
        "name": "images",
        "datatype": datatype,
        "shape": list(images.shape),
        "data": images.ravel().tolist(),
        **extra,
    }


def _binary(doc: dict[str, Any], *tensors: bytes) -> tuple[bytes, dict[str, str]]:
    header = json.dumps(doc).encode()
    return header + b"".join(tensors), {HEADER_LENGTH: str(len(header))}


async def _expected(api: httpx.AsyncClient, frames: np.ndarray) -> np.ndarray:
    images = (frames.astype(np.float32) / 255).reshape(-1, 28, 28, 1)
    answer = await api.post("/v1/models/mnist:predict", json={"instances": images.tolist()})
    return np.array(answer.json()["predictions"], np.float32)


async def test_json_flat_and_nested_data_in_every_layout(api, digits) -> None:
    frames = digits["x_test"][:3]
    expected = await _expected(api, frames)
    floats = frames.astype(np.float32) / 255
    for datatype, images in (
        ("UINT8", frames),
        ("UINT8", frames.reshape(3, 784)),
        ("FP32", floats.reshape(3, 28, 28, 1)),
    ):
        for nested in (False, True):
            tensor = _tensor(images, datatype)
            if nested:
                tensor["data"] = images.tolist()
            answer = await api.post(INFER, json={"id": "n1", "inputs": [tensor]})
            assert answer.status_code == 200, answer.text
            doc = answer.json()
            assert (
                doc["id"] == "n1" and doc["model_name"] == "mnist" and doc["model_version"] == "1"
            )
            (output,) = doc["outputs"]
            assert output["name"] == "probabilities" and output["shape"] == [3, 10]
            np.testing.assert_allclose(np.reshape(output["data"], (3, 10)), expected, atol=1e-5)


async def test_binary_in_binary_out_and_the_other_signature(api, digits) -> None:
    frames = digits["x_test"][:4]
    expected = await _expected(api, frames)
    doc = {
        "inputs": [
            {
                "name": "images",
                "datatype": "UINT8",
                "shape": [4, 784],
                "parameters": {"binary_data_size": 4 * 784},
            }
        ],
        "parameters": {"binary_data_output": True, "signature_name": "predict_images"},
    }
    body, headers = _binary(doc, frames.tobytes())
    answer = await api.post(INFER, content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    length = int(answer.headers[HEADER_LENGTH])
    header = json.loads(answer.content[:length])
    (output,) = header["outputs"]
    assert output["name"] == "scores" and output["parameters"] == {"binary_data_size": 160}
    probabilities = np.frombuffer(answer.content[length:], "<f4").reshape(4, 10)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


async def test_compressed_bodies_and_the_classification_extension(api, digits) -> None:
    frames = digits["x_test"][:2]
    doc = {
        "inputs": [_tensor(frames)],
        "outputs": [{"name": "probabilities", "parameters": {"classification": 2}}],
    }
    raw = json.dumps(doc).encode()
    for encoding, body in (("gzip", gzip.compress(raw)), ("deflate", zlib.compress(raw))):
        answer = await api.post(INFER, content=body, headers={"Content-Encoding": encoding})
        assert answer.status_code == 200, answer.text
        (output,) = answer.json()["outputs"]
        assert output["datatype"] == "BYTES" and output["shape"] == [2, 2]
        best = [entry.split(":")[1] for entry in output["data"][::2]]
        assert best == [str(d) for d in digits["y_test"][:2]]


BAD_FRAMING = [
    ({HEADER_LENGTH: "12x"}, "whole number of bytes"),
    ({HEADER_LENGTH: "999999"}, "has only"),
    ({HEADER_LENGTH: "0"}, "the JSON header in front of the tensors is empty"),
]


@pytest.mark.parametrize(("headers", "words"), BAD_FRAMING)
async def test_a_header_length_that_does_not_fit_the_body(api, headers, words) -> None:
    answer = await api.post(INFER, content=b'{"inputs": []}', headers=headers)
    assert answer.status_code == 400 and words in answer.json()["error"]


BINARY_MISTAKES = [
    (784, 783, "runs past the body's end"),  # declared more than was sent
    (783, 784, "bytes after the last binary tensor"),  # sent more than was declared
    (700, 700, "700 elements but shape [1, 784]"),
]


@pytest.mark.parametrize(("declared", "sent", "words"), BINARY_MISTAKES)
async def test_binary_sizes_that_do_not_add_up(api, declared, sent, words) -> None:
    doc = {
        "inputs": [
            {
                "name": "images",
                "datatype": "UINT8",
                "shape": [1, 784],
                "parameters": {"binary_data_size": declared},
            }
        ]
    }
    body, headers = _binary(doc, bytes(sent))
    answer = await api.post(INFER, content=body, headers=headers)
    assert answer.status_code == 400 and words in answer.json()["error"], answer.text


ONE = np.zeros((1, 784), np.uint8)
JSON_MISTAKES = [
    ({"inputs": []}, "exactly one input"),
    ({"inputs": [_tensor(ONE), _tensor(ONE)]}, "exactly one input"),
    ({"inputs": "x"}, "'inputs' must be a list"),
    ({}, "'inputs' must be a list"),
    ([1, 2], "must be a JSON object"),
    ({"inputs": [_tensor(ONE, name="pixels")]}, "unknown input 'pixels'"),
    ({"inputs": [_tensor(ONE, datatype="FP64")]}, "datatype 'FP64'"),
    ({"inputs": [_tensor(ONE, datatype="FLOAT")]}, "not a datatype"),
    ({"inputs": [_tensor(ONE, shape=[1, 783])]}, "must have shape"),
    ({"inputs": [_tensor(ONE, shape=[2, 784])]}, "784 elements but shape [2, 784]"),
    ({"inputs": [_tensor(ONE, shape="1x784")]}, "shape must be a list"),
    ({"inputs": [_tensor(ONE, data=[300] * 784)]}, "0-255"),
    ({"inputs": [_tensor(ONE, data=[0.5] * 784)]}, "whole numbers 0-255"),
    ({"inputs": [_tensor(ONE, data=["a"] * 784)]}, "not numbers"),
    ({"inputs": [_tensor(ONE, datatype="FP32", data=[1e39] * 784)]}, "beyond float32"),
    ({"inputs": [_tensor(ONE, data=[True] * 784)]}, "not true/false"),
    ({"inputs": [{"name": "images", "datatype": "UINT8", "shape": [1, 784]}]}, "neither 'data'"),
    ({"inputs": [_tensor(np.zeros((0, 784), np.uint8))]}, "no images"),
    ({"inputs": [_tensor(ONE)], "outputs": [{"name": "logits"}]}, "unknown output 'logits'"),
    (
        {
            "inputs": [_tensor(ONE)],
            "outputs": [{"name": "probabilities", "parameters": {"classification": 11}}],
        },
        "0-10",
    ),
    ({"inputs": [_tensor(ONE, parameters={"shared_memory_region": "r"})]}, "shared memory"),
    ({"inputs": [_tensor(ONE)], "parameters": {"sequence_id": 5}}, "sequences"),
    ({"inputs": [_tensor(ONE)], "parameters": {"signature_name": "x"}}, "signature_name"),
    ({"inputs": [_tensor(ONE)], "parameters": {"timeout": "soon"}}, "timeout"),
    ({"inputs": [_tensor(ONE)], "id": 7}, "'id' must be a string"),
]


@pytest.mark.parametrize(("doc", "words"), JSON_MISTAKES)
async def test_json_mistakes_are_refused_by_name(api, doc, words) -> None:
    answer = await api.post(INFER, json=doc)
    assert answer.status_code == 400, answer.text
    assert words in answer.json()["error"]


async def test_models_versions_and_labels_on_every_route(api) -> None:
    assert (await api.get("/v2/models/nope")).status_code == 404
    assert (
        "Servable not found" in (await api.post("/v2/models/nope/infer", json={})).json()["error"]
    )
    for path, status in (
        ("/v2/models/mnist/versions/1", 200),
        ("/v2/models/mnist/versions/stable", 200),
        ("/v2/models/mnist/versions/9", 404),
        ("/v2/models/mnist/versions/0", 404),
    ):
        assert (await api.get(path)).status_code == status, path
    ready = await api.get("/v2/models/mnist/versions/stable/ready")
    assert ready.status_code == 200 and ready.json() == {"name": "mnist", "ready": True}
    unknown = await api.get("/v2/models/mnist/versions/9/ready")  # not served: not found
    assert unknown.status_code == 404 and "Servable not found" in unknown.json()["error"]
    assert (await api.get("/v2/health/live")).json() == {"live": True}
    assert (await api.get("/v2/health/ready")).json() == {"ready": True}
    assert (
        await api.post("/v2/models/mnist/versions/stable/infer", json={"inputs": [_tensor(ONE)]})
    ).status_code == 200


async def test_keys_limits_and_timeouts_are_the_gateways(model_dir) -> None:
    settings = Settings(
        model_dir=model_dir,
        api_keys={"ci": "ci-key-0123456789abcdef"},
        max_images_per_request=4,
        max_body_bytes=64 * 1024,
    )
    async with in_process(settings) as api:
        body = {"inputs": [_tensor(ONE)]}
        assert (await api.post(INFER, json=body)).status_code == 401
        assert (await api.get("/v2/health/ready")).status_code == 200  # an open route
        key = {"X-API-Key": "ci-key-0123456789abcdef"}
        assert (await api.post(INFER, json=body, headers=key)).status_code == 200
        five = {"inputs": [_tensor(np.zeros((5, 784), np.uint8))]}
        refused = await api.post(INFER, json=five, headers=key)
        assert refused.status_code == 400 and "the limit is 4" in refused.json()["error"]
        big = {
            "inputs": [_tensor(np.zeros((4, 784), np.uint8), datatype="FP32")],
            "pad": "x" * 70_000,
        }
        assert (await api.post(INFER, json=big, headers=key)).status_code == 413
        quick = {**body, "parameters": {"timeout": 1}}  # Triton's timeout: microseconds
        late = await api.post(INFER, json=quick, headers=key)
        assert late.status_code == 504 and "deadline" in late.json()["error"]


# -- gRPC, with our own stubs ----------------------------------------------------------------


@pytest.fixture(scope="module")
def gateway(model_dir: Path) -> Iterator[Server]:
    server = start_gateway(model_dir)
    yield server
    stop_gateway(server)


@pytest.fixture(scope="module")
def stub(gateway: Server) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(gateway.grpc) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


def _grpc_request(frames: np.ndarray, raw: bool = True) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="mnist", id="g")
    tensor = request.inputs.add(name="images", datatype="UINT8", shape=list(frames.shape))
    if raw:
        request.raw_input_contents.append(frames.tobytes())
    else:
        tensor.contents.uint_contents.extend(frames.ravel().tolist())
    return request


def test_grpc_answers_in_the_form_it_was_asked(stub, gateway, digits) -> None:
    frames = digits["x_test"][:3].reshape(3, 784)
    raw = stub.ModelInfer(_grpc_request(frames), timeout=10)
    assert raw.id == "g" and raw.model_version == "1" and len(raw.raw_output_contents) == 1
    probabilities = np.frombuffer(raw.raw_output_contents[0], "<f4").reshape(3, 10)
    typed = stub.ModelInfer(_grpc_request(frames, raw=False), timeout=10)
    assert not typed.raw_output_contents
    np.testing.assert_allclose(
        np.reshape(typed.outputs[0].contents.fp32_contents, (3, 10)), probabilities, atol=1e-6
    )
    forced = _grpc_request(frames, raw=False)
    forced.parameters["binary_data_output"].bool_param = True
    assert stub.ModelInfer(forced, timeout=10).raw_output_contents
    assert stub.ServerLive(pb.ServerLiveRequest()).live
    assert stub.ServerReady(pb.ServerReadyRequest()).ready
    assert stub.ModelReady(pb.ModelReadyRequest(name="mnist", version="1")).ready
    assert not stub.ModelReady(pb.ModelReadyRequest(name="mnist", version="4")).ready
    metadata = stub.ModelMetadata(pb.ModelMetadataRequest(name="mnist"))
    assert metadata.versions == ["1"] and list(metadata.inputs[0].shape) == [-1, 28, 28, 1]
    assert "binary_tensor_data" in stub.ServerMetadata(pb.ServerMetadataRequest()).extensions


GRPC_MISTAKES = [
    (lambda r: setattr(r, "model_name", "digits"), grpc.StatusCode.NOT_FOUND, "Servable not found"),
    (
        lambda r: r.raw_input_contents.append(b"x"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "one per input",
    ),
    (
        lambda r: r.inputs[0].contents.uint_contents.append(1),
        grpc.StatusCode.INVALID_ARGUMENT,
        "has contents while raw_input_contents",
    ),
    (
        lambda r: setattr(r.inputs[0], "datatype", "INT64"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INT64",
    ),
    (
        lambda r: r.inputs[0].shape.__setitem__(1, 783),
        grpc.StatusCode.INVALID_ARGUMENT,
        "must have shape",
    ),
    (lambda r: r.outputs.add(name="scores"), grpc.StatusCode.INVALID_ARGUMENT, "unknown output"),
]


@pytest.mark.parametrize(("spoil", "code", "words"), GRPC_MISTAKES)
def test_grpc_refusals_have_the_right_status(stub, spoil, code, words) -> None:
    request = _grpc_request(np.zeros((1, 784), np.uint8))
    spoil(request)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(request, timeout=10)
    assert caught.value.code() == code and words in caught.value.details()


def test_undecodable_bytes_are_invalid_argument(gateway) -> None:
    with grpc.insecure_channel(gateway.grpc) as channel:
        call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        with pytest.raises(grpc.RpcError) as caught:
            call(b"\xff\xff\xff", timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_health_and_reflection_list_the_service(gateway) -> None:
    service = "inference.GRPCInferenceService"
    with grpc.insecure_channel(gateway.grpc) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=10
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        (answer,) = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
    assert service in {s.name for s in answer.list_services_response.service}


def test_each_protocol_is_counted_once_under_its_own_label(stub, gateway) -> None:
    def count(protocol: str) -> float:
        text = httpx.get(gateway.url + "/metrics", timeout=10).text
        key = f'mnist_requests_total{{code="OK",protocol="{protocol}",route="infer"}} '
        line = next((line for line in text.splitlines() if line.startswith(key)), key + "0")
        return float(line.split()[-1])

    before = {p: count(p) for p in ("v2_rest", "v2_grpc")}
    frames = np.zeros((2, 784), np.uint8)
    for _ in range(3):
        stub.ModelInfer(_grpc_request(frames), timeout=10)
    answer = httpx.post(gateway.url + INFER, json={"inputs": [_tensor(frames)]}, timeout=10)
    assert answer.status_code == 200
    assert count("v2_grpc") - before["v2_grpc"] == 3
    assert count("v2_rest") - before["v2_rest"] == 1
    text = httpx.get(gateway.url + "/metrics", timeout=10).text
    assert 'mnist_images_total{protocol="v2_grpc"}' in text
    assert 'route="healthz"' not in text  # probes are not counted, on either face
