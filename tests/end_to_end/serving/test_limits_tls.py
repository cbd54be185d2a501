"""JSON nesting and request-time limits, and TLS on both protocols with a self-signed cert."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import grpc
import httpx
import pytest

from mnist_client import MnistClient
from mnist_contract.protos import digits_pb2, digits_pb2_grpc
from mnist_serving.settings import Settings
from tests.helpers.gateways import in_process, png_bytes
from tests.helpers.processes import run_gateway, start_gateway, stop_gateway


async def test_json_nested_past_the_limit_is_refused_by_name(api) -> None:
    for depth in (17, 5000):  # ours, and far past orjson's own cap
        body = '{"instances": ' + "[" * depth + "0" + "]" * depth + "}"
        r = await api.post("/v1/models/mnist:predict", content=body)
        assert r.status_code == 400 and r.json() == {"error": "JSON nests deeper than 16 levels"}
    deep_options = {"images": [[0] * 28] * 28, "top_k": {"a": {"b": [[[[[[[[[[[[[[1]]]]]]]]]]]]]]}}}
    r = await api.post("/v1/digits:classify", json=deep_options)
    assert r.status_code == 400 and "deeper than 16" in r.json()["error"]


async def test_a_request_past_the_time_limit_gets_504(model_dir, digits) -> None:
    files = [
        ("file", (f"{i}.png", png_bytes(digits["x_test"][i % 100]), "image/png"))
        for i in range(1000)
    ]
    settings = Settings(model_dir=model_dir, request_timeout_ms=10, grpc_port=-1)
    async with in_process(settings) as client:
        r = await client.post("/v1/digits:classify", files=files)
        assert r.status_code == 504
        assert "request_timeout_ms" in r.json()["error"]
        # The server carried on: a small request is answered within the 10 ms limit once the
        # timed-out request's image decoding (a thread cannot be interrupted) has finished.
        statuses = []
        for _ in range(50):
            small = await client.post(
                "/v1/digits:classify",
                content=digits["x_test"][0].tobytes(),
                headers={"Content-Type": "application/octet-stream"},
            )
            statuses.append(small.status_code)
            if small.status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert statuses[-1] == 200 and set(statuses) <= {200, 504}, statuses


def test_grpc_request_past_the_time_limit_is_deadline_exceeded(model_dir, digits) -> None:
    server = start_gateway(model_dir, "--request-timeout-ms", "10")
    try:
        request = digits_pb2.ClassifyRequest()
        for i in range(1000):
            request.images.add(encoded=png_bytes(digits["x_test"][i % 100]))
        with grpc.insecure_channel(server.grpc) as channel, pytest.raises(grpc.RpcError) as info:
            digits_pb2_grpc.DigitClassifierStub(channel).Classify(request, timeout=30)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "request_timeout_ms" in (info.value.details() or "")
    finally:
        stop_gateway(server)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, made with openssl."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_tls_on_rest_and_grpc_with_the_sdk_and_official_stubs(model_dir, digits, certificate):
    cert, key = certificate
    server = start_gateway(model_dir, "--tls-cert-file", str(cert), "--tls-key-file", str(key))
    try:
        assert server.url.startswith("https://")
        image = digits["x_test"][0]
        expected = int(digits["y_test"][0])
        with MnistClient(server.url, ca_file=str(cert)) as rest:
            assert rest.classify(image)[0].digit == expected
        with MnistClient(f"grpcs://{server.grpc}", ca_file=str(cert)) as secure:
            assert secure.classify(image)[0].digit == expected

        # Plain HTTP and plaintext gRPC to the same ports are refused.
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url.replace("https://", "http://") + "/readyz", timeout=5)
        request = digits_pb2.ClassifyRequest()
        request.images.add(raw=image.tobytes())
        with grpc.insecure_channel(server.grpc) as plain, pytest.raises(grpc.RpcError) as info:
            digits_pb2_grpc.DigitClassifierStub(plain).Classify(request, timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        # Without the certificate in the trust store the client refuses the server.
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url + "/readyz", timeout=5)

        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

        credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        with grpc.secure_channel(server.grpc, credentials) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            predict = predict_pb2.PredictRequest()
            predict.model_spec.name = "mnist"
            predict.inputs["images"].CopyFrom(
                tf.make_tensor_proto(image.reshape(1, 28, 28, 1).astype("float32") / 255)
            )
            answer = stub.Predict(predict, timeout=10)
        assert int(tf.make_ndarray(answer.outputs["probabilities"]).argmax()) == expected
    finally:
        stop_gateway(server)


def test_tls_needs_both_files(model_dir, certificate) -> None:
    cert, _ = certificate
    run = run_gateway(model_dir, "--tls-cert-file", str(cert), timeout=60)
    assert run.returncode == 2 and "needs both tls_cert_file and tls_key_file" in run.stderr
