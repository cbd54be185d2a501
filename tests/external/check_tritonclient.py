"""Triton's own Python clients (tritonclient.http and tritonclient.grpc), unchanged."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from gateway import GRPC, REST
from tritonclient.utils import InferenceServerException

CLIENTS = {"http": (triton_http, REST), "grpc": (triton_grpc, GRPC)}


@pytest.fixture(params=list(CLIENTS))
def triton(request: pytest.FixtureRequest):
    module, url = CLIENTS[request.param]
    client = module.InferenceServerClient(url)
    yield module, client
    client.close()


def _input(module, array: np.ndarray, datatype: str, binary: bool = True):
    tensor = module.InferInput("images", list(array.shape), datatype)
    if module is triton_http:
        tensor.set_data_from_numpy(array, binary_data=binary)
    else:
        tensor.set_data_from_numpy(array)
    return tensor


def _response(module, result) -> dict:
    """The answer as JSON: tritonclient.grpc gives a message unless asked for JSON."""
    return result.get_response(as_json=True) if module is triton_grpc else result.get_response()


def _layouts(images: np.ndarray):
    """The digits in every datatype and layout the model takes."""
    floats = images.astype(np.float32) / 255
    yield "UINT8", images.reshape(-1, 784)
    yield "UINT8", images.reshape(-1, 28, 28, 1)
    yield "FP32", floats.reshape(-1, 28, 28, 1)
    yield "FP32", floats.reshape(-1, 784)


def test_health_and_metadata(triton) -> None:
    module, client = triton
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("mnist") and client.is_model_ready("mnist", "1")
    assert not client.is_model_ready("mnist", "99")
    server = (
        client.get_server_metadata(as_json=True)
        if module is triton_grpc
        else client.get_server_metadata()
    )
    assert "binary_tensor_data" in server["extensions"]
    model = (
        client.get_model_metadata("mnist", as_json=True)
        if module is triton_grpc
        else client.get_model_metadata("mnist")
    )
    assert model["name"] == "mnist" and model["versions"] == ["1"]
    (image,) = model["inputs"]
    assert image["name"] == "images" and image["datatype"] == "FP32"
    assert [int(d) for d in image["shape"]] == [-1, 28, 28, 1]
    (output,) = model["outputs"]
    assert output["name"] == "probabilities" and [int(d) for d in output["shape"]] == [-1, 10]


def test_every_datatype_and_layout_answers_like_the_tf_serving_api(
    triton, digits, expected
) -> None:
    module, client = triton
    for datatype, array in _layouts(digits[0][:16]):
        result = client.infer("mnist", [_input(module, array, datatype)], request_id="t-1")
        probabilities = result.as_numpy("probabilities")
        assert probabilities.shape == (16, 10), datatype
        np.testing.assert_allclose(probabilities, expected[:16], atol=1e-5)
        assert (
            result.get_response(as_json=True)["id"] == "t-1"
            if module is triton_grpc
            else result.get_response()["id"] == "t-1"
        )


def test_binary_data_on_and_off_over_http(digits, expected) -> None:
    client = triton_http.InferenceServerClient(REST)
    images = digits[0][:8].reshape(-1, 784)
    for binary_in in (True, False):
        for binary_out in (True, False):
            output = triton_http.InferRequestedOutput("probabilities", binary_data=binary_out)
            result = client.infer(
                "mnist", [_input(triton_http, images, "UINT8", binary_in)], outputs=[output]
            )
            np.testing.assert_allclose(result.as_numpy("probabilities"), expected[:8], atol=1e-5)
            sent_json = "data" in result.get_response()["outputs"][0]
            assert sent_json is not binary_out


def test_256_images_in_one_request(triton, digits, expected) -> None:
    module, client = triton
    images, labels = digits
    result = client.infer("mnist", [_input(module, images, "UINT8")])
    probabilities = result.as_numpy("probabilities")
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    assert (probabilities.argmax(axis=1) == labels).mean() > 0.9


def test_classification_extension_gives_the_top_classes(triton, digits, expected) -> None:
    module, client = triton
    output = module.InferRequestedOutput("probabilities", class_count=3)
    result = client.infer(
        "mnist", [_input(module, digits[0][:4].reshape(-1, 784), "UINT8")], outputs=[output]
    )
    classes = result.as_numpy("probabilities")
    assert classes.shape == (4, 3)
    for row, probabilities in zip(classes, expected[:4], strict=True):
        indices = [int(entry.decode().split(":")[1]) for entry in row]
        assert indices == list(np.argsort(-probabilities, kind="stable")[:3])


def test_a_version_by_number_and_by_label(triton, digits, expected) -> None:
    module, client = triton
    array = digits[0][:2].reshape(-1, 784)
    for version in ("1", "stable"):
        result = client.infer("mnist", [_input(module, array, "UINT8")], model_version=version)
        assert (
            result.get_response(as_json=True)["model_version"] == "1"
            if module is triton_grpc
            else result.get_response()["model_version"] == "1"
        )
        np.testing.assert_allclose(result.as_numpy("probabilities"), expected[:2], atol=1e-5)


@pytest.mark.parametrize(
    ("model", "version", "datatype", "shape", "status", "words"),
    [
        ("digits", "", "UINT8", [1, 784], {"404", "StatusCode.NOT_FOUND"}, "Servable not found"),
        ("mnist", "7", "UINT8", [1, 784], {"404", "StatusCode.NOT_FOUND"}, "Servable not found"),
        ("mnist", "", "UINT8", [1, 700], {"400", "StatusCode.INVALID_ARGUMENT"}, "must have shape"),
        ("mnist", "", "FP64", [1, 784], {"400", "StatusCode.INVALID_ARGUMENT"}, "datatype 'FP64'"),
        ("mnist", "", "INT32", [1, 784], {"400", "StatusCode.INVALID_ARGUMENT"}, "send FP32"),
    ],
)
def test_refusals_name_what_was_wrong(
    triton, model, version, datatype, shape, status, words
) -> None:
    module, client = triton
    array = np.zeros(shape, {"UINT8": np.uint8, "FP64": np.float64, "INT32": np.int32}[datatype])
    with pytest.raises(InferenceServerException) as caught:
        client.infer(model, [_input(module, array, datatype)], model_version=version)
    assert caught.value.status() in status
    assert words in caught.value.message()


def test_a_wrong_input_name_is_refused(triton) -> None:
    module, client = triton
    tensor = module.InferInput("pixels", [1, 784], "UINT8")
    tensor.set_data_from_numpy(np.zeros((1, 784), np.uint8))
    with pytest.raises(InferenceServerException, match="unknown input 'pixels'"):
        client.infer("mnist", [tensor])


def _post(body: bytes, header_length: int):
    """(status, the answer's bytes, its header length) of a raw POST to the infer route."""
    request = urllib.request.Request(
        f"http://{REST}/v2/models/mnist/infer",
        body,
        {"Inference-Header-Content-Length": str(header_length)},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read(), answer.headers["Inference-Header-Content-Length"]
    except urllib.error.HTTPError as error:
        return error.code, error.read(), None


@pytest.mark.parametrize(
    ("spoil", "words"),
    [
        (lambda body, length: (body[:-1], length), "runs past the body's end"),
        (lambda body, length: (body + b"\0", length), "bytes after the last binary tensor"),
        (lambda body, length: (body, len(body) + 10), "has only"),
    ],
)
def test_a_binary_body_from_tritonclient_spoiled_in_transit(digits, spoil, words) -> None:
    """tritonclient's own encoder makes the body (its client never sends a wrong one); the
    bytes are then cut, padded or given a header length past the end."""
    tensor = _input(triton_http, digits[0][:2].reshape(-1, 784), "UINT8")
    body, length = triton_http.InferenceServerClient.generate_request_body([tensor])
    status, answer, _ = _post(*spoil(body, length))
    assert status == 400 and words in json.loads(answer)["error"]
    status, answer, answer_length = _post(body, length)  # unspoiled, the same body is answered
    assert status == 200
    result = triton_http.InferenceServerClient.parse_response_body(
        answer, header_length=int(answer_length)
    )
    assert result.as_numpy("probabilities").shape == (2, 10)
