"""gRPC: the official tensorflow-serving-api stubs as the client, the digits service, health,
reflection, and a gateway chain (B: backend=tfserving → A: backend=local) on free ports."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import httpx
import numpy as np
import pytest
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from mnist_contract.protos import digits_pb2, digits_pb2_grpc
from tests.helpers.drawings import CASES, DIGIT_INDEX, ink_of
from tests.helpers.gateways import png_bytes
from tests.helpers.processes import Server, free_port, start_gateway, stop_gateway


@pytest.fixture(scope="module")
def gateway(model_dir) -> Iterator[Server]:
    srv = start_gateway(model_dir, env={"MNIST_VERSION_LABELS": '{"stable": 1}'})
    yield srv
    stop_gateway(srv)


@pytest.fixture(scope="module")
def channel(gateway) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(gateway.grpc) as ch:
        yield ch


def _images(digits, n=8) -> np.ndarray:
    return (digits["x_test"][:n].astype(np.float32) / 255.0)[..., None]


def _request(images: np.ndarray, signature: str = "", **spec) -> predict_pb2.PredictRequest:
    import tensorflow as tf

    request = predict_pb2.PredictRequest()
    request.model_spec.name = spec.get("name", "mnist")
    if signature:
        request.model_spec.signature_name = signature
    if "version" in spec:
        request.model_spec.version.value = spec["version"]
    if "label" in spec:
        request.model_spec.version_label = spec["label"]
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(images))
    return request


def test_official_stub_predict_serving_default_with_tensor_content(
    channel, gateway, digits
) -> None:
    import tensorflow as tf

    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    images = _images(digits)
    request = _request(images)
    assert request.inputs["images"].tensor_content  # make_tensor_proto packs raw bytes
    answer = stub.Predict(request, timeout=10)
    probs = tf.make_ndarray(answer.outputs["probabilities"])
    assert probs.shape == (8, 10) and probs.dtype == np.float32
    assert len(answer.outputs["probabilities"].float_val) == 80  # TF Serving's default encoding
    assert answer.model_spec.name == "mnist" and answer.model_spec.version.value == 1
    assert answer.model_spec.signature_name == "serving_default"
    rest = httpx.post(gateway.url + "/v1/models/mnist:predict", json={"instances": images.tolist()})
    np.testing.assert_allclose(probs, rest.json()["predictions"], atol=1e-6)


def test_official_stub_predict_images_with_float_val(channel, digits) -> None:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    images = _images(digits, 4).reshape(4, 784)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mnist"
    request.model_spec.signature_name = "predict_images"
    tensor = request.inputs["images"]
    tensor.dtype = 1  # DT_FLOAT
    tensor.tensor_shape.dim.add(size=4)
    tensor.tensor_shape.dim.add(size=784)
    tensor.float_val.extend(images.reshape(-1).tolist())
    answer = stub.Predict(request, timeout=10)
    scores = np.array(answer.outputs["scores"].float_val).reshape(4, 10)
    reference = stub.Predict(_request(_images(digits, 4)), timeout=10)
    np.testing.assert_allclose(
        scores.argmax(1),
        np.array(reference.outputs["probabilities"].float_val).reshape(4, 10).argmax(1),
    )


def test_version_by_number_and_label_and_output_filter(channel, digits) -> None:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    by_number = stub.Predict(_request(_images(digits, 2), version=1), timeout=10)
    by_label = stub.Predict(_request(_images(digits, 2), label="stable"), timeout=10)
    assert (
        by_number.outputs["probabilities"].float_val == by_label.outputs["probabilities"].float_val
    )
    request = _request(_images(digits, 2))
    request.output_filter.append("probabilities")
    assert set(stub.Predict(request, timeout=10).outputs) == {"probabilities"}


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        (
            {"name": "other"},
            grpc.StatusCode.NOT_FOUND,
            r"Servable not found for request: Latest\(other\)",
        ),
        ({"version": 9}, grpc.StatusCode.NOT_FOUND, r"Specific\(mnist, 9\)"),
        (
            {"label": "canary"},
            grpc.StatusCode.NOT_FOUND,
            "Unrecognized servable version label: canary",
        ),
        ({"signature": "nope"}, grpc.StatusCode.INVALID_ARGUMENT, '"nope" not found'),
        ({"shape": (2, 784)}, grpc.StatusCode.INVALID_ARGUMENT, r"must have shape \[N,28,28,1\]"),
        ({"filter": "nope"}, grpc.StatusCode.INVALID_ARGUMENT, "output tensor alias not found"),
        ({"truncate": True}, grpc.StatusCode.INVALID_ARGUMENT, "tensor_content holds"),
    ],
)
def test_errors_map_to_tf_serving_codes(channel, digits, change, code, message) -> None:
    import re

    images = _images(digits, 2)
    if "shape" in change:
        images = images.reshape(change["shape"])
    spec = {k: v for k, v in change.items() if k in ("name", "version", "label")}
    request = _request(images, change.get("signature", ""), **spec)
    if "filter" in change:
        request.output_filter.append(change["filter"])
    if "truncate" in change:
        request.inputs["images"].tensor_content = request.inputs["images"].tensor_content[:-4]
    with pytest.raises(grpc.RpcError) as info:
        prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=10)
    assert info.value.code() == code
    assert re.search(message, info.value.details()), info.value.details()


def test_a_deadline_the_caller_sets_is_honoured(channel, digits) -> None:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(_request(_images(digits, 256)), timeout=0.0005)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_metadata_and_status_with_official_messages(channel) -> None:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "mnist"
    answer = stub.GetModelMetadata(request, timeout=10)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert answer.metadata["signature_def"].Unpack(signatures)
    assert set(signatures.signature_def) == {"serving_default", "predict_images"}
    flat = signatures.signature_def["predict_images"]
    assert [d.size for d in flat.inputs["images"].tensor_shape.dim] == [-1, 784]
    assert set(flat.outputs) == {"scores"}
    request.ClearField("metadata_field")
    with pytest.raises(grpc.RpcError) as info:
        stub.GetModelMetadata(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "mnist"
    status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
        status_request, timeout=10
    )
    (version,) = status.model_version_status
    assert version.version == 1
    assert version.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE


def test_digits_service_with_png_and_raw_images(channel, digits) -> None:
    stub = digits_pb2_grpc.DigitClassifierStub(channel)
    x, y = digits["x_test"][:4], digits["y_test"][:4]
    request = digits_pb2.ClassifyRequest(top_k=2, return_preprocessed=True)
    request.images.add(encoded=png_bytes(255 - x[0]))
    for image in x[1:]:
        request.images.add(raw=image.tobytes())
    answer = stub.Classify(request, timeout=10)
    assert answer.model_version == 1
    assert [r.digit for r in answer.results] == y.tolist()
    first = answer.results[0]
    assert (
        len(first.probabilities) == 10 and len(first.top_k) == 2 and len(first.preprocessed) == 784
    )
    bad = digits_pb2.ClassifyRequest()
    bad.images.add(raw=b"\0" * 100)
    with pytest.raises(grpc.RpcError) as info:
        stub.Classify(bad, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "raw must be 784 bytes" in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        stub.Classify(digits_pb2.ClassifyRequest(), timeout=10)
    assert "no images" in info.value.details()


def test_health_and_reflection(channel) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "tensorflow.serving.PredictionService", "mnist.v1.DigitClassifier"):
        answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    (listing,) = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name for s in listing.list_services_response.service}
    assert {
        "tensorflow.serving.PredictionService",
        "tensorflow.serving.ModelService",
        "mnist.v1.DigitClassifier",
        "grpc.health.v1.Health",
    } <= names
    (described,) = stub.ServerReflectionInfo(
        iter(
            [
                reflection_pb2.ServerReflectionRequest(
                    file_containing_symbol="mnist.v1.DigitClassifier"
                )
            ]
        )
    )
    assert described.file_descriptor_response.file_descriptor_proto


def test_grpc_requests_are_counted_with_their_protocol(channel, gateway, digits) -> None:
    prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
        _request(_images(digits, 3)), timeout=10
    )
    metrics = httpx.get(gateway.url + "/metrics").text
    assert 'mnist_requests_total{code="OK",protocol="grpc",route="predict"}' in metrics
    assert 'mnist_images_total{protocol="grpc"}' in metrics


# -- the chain: B (backend=tfserving) in front of A (backend=local) ------------------------


def _wait(predicate, seconds: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {seconds} s")


def test_chain_answers_like_its_backend_fails_fast_and_recovers(model_dir, digits) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    a_port = free_port()
    a = start_gateway(model_dir, grpc_port=a_port)
    b = start_gateway(
        model_dir,
        "--backend",
        "tfserving",
        "--tfserving-targets",
        f"127.0.0.1:{a_port}",
        "--tfserving-timeout-ms",
        "2000",
    )
    try:
        _wait(lambda: httpx.get(b.url + "/readyz").status_code == 200, 10)
        x = digits["x_test"][:16]
        for path, body in (
            ("/v1/digits:classify", {"images": x.tolist(), "top_k": 3}),
            ("/v1/models/mnist:predict", {"instances": _images(digits, 16).tolist()}),
            (
                "/v1/models/mnist:predict",
                {
                    "signature_name": "predict_images",
                    "instances": _images(digits, 4).reshape(4, 784).tolist(),
                },
            ),
        ):
            via_a, via_b = httpx.post(a.url + path, json=body), httpx.post(b.url + path, json=body)
            assert via_a.status_code == via_b.status_code == 200
            assert via_a.json() == via_b.json()
        for path in ("/v1/models/mnist", "/v1/models/mnist/metadata"):
            assert httpx.get(a.url + path).json() == httpx.get(b.url + path).json()
        with grpc.insecure_channel(a.grpc) as ca, grpc.insecure_channel(b.grpc) as cb:
            request = _request(_images(digits, 5))
            pa = prediction_service_pb2_grpc.PredictionServiceStub(ca).Predict(request, timeout=10)
            pb = prediction_service_pb2_grpc.PredictionServiceStub(cb).Predict(request, timeout=10)
            assert pa.outputs["probabilities"].float_val == pb.outputs["probabilities"].float_val

        stop_gateway(a)
        started = time.monotonic()
        refused = httpx.post(
            b.url + "/v1/digits:classify", json={"images": x[:1].tolist()}, timeout=10
        )
        assert refused.status_code == 503 and time.monotonic() - started < 2.5
        assert "TF Serving" in refused.json()["error"]
        _wait(lambda: httpx.get(b.url + "/readyz").status_code == 503, 2)
        with grpc.insecure_channel(b.grpc) as cb:
            health = health_pb2_grpc.HealthStub(cb)
            not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
            _wait(
                lambda: (
                    health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == not_serving
                ),
                1,
            )
            with pytest.raises(grpc.RpcError) as info:
                prediction_service_pb2_grpc.PredictionServiceStub(cb).Predict(
                    _request(_images(digits, 1)), timeout=5
                )
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE

        a = start_gateway(model_dir, grpc_port=a_port)
        _wait(lambda: httpx.get(b.url + "/readyz").status_code == 200, 10)
        again = httpx.post(b.url + "/v1/digits:classify", json={"images": x.tolist()}, timeout=10)
        assert again.status_code == 200
    finally:
        stop_gateway(b)
        stop_gateway(a)


def test_digits_service_reads_every_accepted_format_and_names_a_refused_one(
    channel, digits
) -> None:
    stub = digits_pb2_grpc.DigitClassifierStub(channel)
    request = digits_pb2.ClassifyRequest()
    cases = (
        "webp-lossy",
        "gif-first-frame",
        "tiff-float",
        "png-16-bit",
        "exif-orientation",
        "rgba-white-ink",
        "cmyk-jpeg",
        "bmp",
    )
    for case in cases:
        request.images.add(encoded=CASES[case](ink_of(digits)))
    answer = stub.Classify(request, timeout=30)
    expected = int(digits["y_test"][DIGIT_INDEX])
    assert [r.digit for r in answer.results] == [expected] * len(cases)
    refused = digits_pb2.ClassifyRequest()
    refused.images.add(encoded=b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    with pytest.raises(grpc.RpcError) as info:
        stub.Classify(refused, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unsupported image format PDF" in info.value.details()
