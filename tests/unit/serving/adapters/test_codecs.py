"""The wire codecs as pure functions: JSON and protobuf in, core calls out, and back."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from mnist_contract.model import SIGNATURES
from mnist_contract.protos import digits_pb2
from mnist_contract.protos import tensorflow_serving_pb2 as tfs
from mnist_contract.tensors import array_to_tensor, tensor_to_array
from mnist_serving.adapters.grpc import codec as grpc_codec
from mnist_serving.adapters.rest import codec as rest_codec
from mnist_serving.adapters.rest.multipart import parse_form
from mnist_serving.core.inference import Classification, ClassifyResult, PredictResult
from mnist_serving.errors import InvalidInput, NotFound
from mnist_serving.repositories.protocol import VersionSpec


def test_predict_bodies_in_both_formats_and_tf_servings_refusals() -> None:
    rows = {"instances": np.zeros((2, 784)).tolist(), "signature_name": "predict_images"}
    signature, inputs, row_format = rest_codec.parse_predict(rows)
    assert signature == "predict_images" and row_format and inputs["images"].shape == (2, 784)
    named = {"inputs": {"images": np.zeros((1, 28, 28, 1)).tolist()}}
    assert rest_codec.parse_predict(named)[1]["images"].shape == (1, 28, 28, 1)
    with pytest.raises(InvalidInput, match="only one of 'inputs' or 'instances'"):
        rest_codec.parse_predict({"inputs": [], "instances": []})
    with pytest.raises(InvalidInput, match="rows of different lengths"):
        rest_codec.parse_predict({"instances": [[1, 2], [3]]})
    answer = PredictResult({"scores": np.ones((1, 10), np.float32)}, 3)
    assert list(rest_codec.render_predict(answer, row_format=False)) == ["outputs"]


def test_metadata_comes_from_the_one_signature_table() -> None:
    rest = rest_codec.signature_defs()
    grpc = grpc_codec.signature_def_map().signature_def
    for name, signature in SIGNATURES.items():
        dims = [int(d["size"]) for d in rest[name]["inputs"]["images"]["tensor_shape"]["dim"]]
        assert tuple(dims) == signature.batched_input_shape
        assert [d.size for d in grpc[name].inputs["images"].tensor_shape.dim] == dims
        assert set(rest[name]["outputs"]) == set(grpc[name].outputs) == {signature.output}


def test_digits_options_from_json_and_query_text() -> None:
    assert rest_codec.parse_options({"top_k": "3", "return_preprocessed": "TRUE"}) == (
        3,
        True,
        None,
    )
    assert rest_codec.parse_options({"version": 2}) == (0, False, "2")
    for bad in ({"top_k": 11}, {"top_k": True}, {"top_k": "-1"}, {"return_preprocessed": "yes"}):
        with pytest.raises(InvalidInput):
            rest_codec.parse_options(bad)


def test_classify_renders_top_k_most_probable_first() -> None:
    probabilities = np.array([0.1, 0.3, 0.3, 0.2, 0.1, 0, 0, 0, 0, 0], np.float32)
    frame = np.zeros((28, 28), np.uint8)
    result = ClassifyResult([Classification(1, 0.3, probabilities, frame)], 4)
    doc = rest_codec.render_classify(result, top_k=3, preprocessed=False)
    assert [c["digit"] for c in doc["predictions"][0]["top_k"]] == [1, 2, 3]  # ties: lower first
    request = digits_pb2.ClassifyRequest(top_k=3)
    message = grpc_codec.classify_response(request, result)
    assert [c.digit for c in message.results[0].top_k] == [1, 2, 3]


def test_grpc_model_specs_and_output_filters() -> None:
    spec = tfs.ModelSpec(name="mnist")
    spec.version.value = 2
    assert grpc_codec.version_spec(spec) == VersionSpec(version=2)
    assert grpc_codec.version_spec(tfs.ModelSpec(name="mnist", version_label="a")).label == "a"
    with pytest.raises(NotFound, match=r"Latest\(other\)"):
        grpc_codec.version_spec(tfs.ModelSpec(name="other"))
    request = tfs.PredictRequest(output_filter=["nope"])
    result = PredictResult({"probabilities": np.ones((1, 10), np.float32)}, 1)
    with pytest.raises(InvalidInput, match="output tensor alias not found"):
        grpc_codec.predict_response(request, "serving_default", result, as_content=True)
    response = grpc_codec.predict_response(tfs.PredictRequest(), "serving_default", result, False)
    assert tensor_to_array(response.outputs["probabilities"]).shape == (1, 10)


def test_grpc_images_are_checked_by_size() -> None:
    request = digits_pb2.ClassifyRequest()
    request.images.add(raw=bytes(783))
    with pytest.raises(InvalidInput, match="raw must be 784 bytes"):
        grpc_codec.classify_images(request)
    with pytest.raises(InvalidInput, match="top_k must be an integer 0-10"):
        grpc_codec.classify_images(digits_pb2.ClassifyRequest(top_k=11))


def test_tensors_round_trip_in_both_encodings() -> None:
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    for as_content in (True, False):
        assert np.array_equal(tensor_to_array(array_to_tensor(array, as_content=as_content)), array)


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (28, 28), 255).save(buffer, "PNG")
    return buffer.getvalue()


def test_multipart_parts_are_images_unless_named_as_options() -> None:
    png = _png()
    body = (b"--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n" + png +
            b"\r\n--b\r\nContent-Disposition: form-data; name=\"x\"; filename=\"a.png\"\r\n\r\n" +
            png + b"\r\n--b\r\nContent-Disposition: form-data; name=\"top_k\"\r\n\r\n3\r\n--b--\r\n")  # fmt: skip
    form = parse_form("multipart/form-data; boundary=b", body)
    assert form.files == [png, png] and form.options == {"top_k": "3"}
    with pytest.raises(InvalidInput, match="closing boundary"):
        parse_form("multipart/form-data; boundary=b", body[:40])
    with pytest.raises(InvalidInput, match="names no boundary"):
        parse_form("multipart/form-data", body)


def test_json_images_b64_and_pixels() -> None:
    doc = {"images": [{"b64": base64.b64encode(_png()).decode()}, [[0, 255], [255, 0]]]}
    images, options = rest_codec.parse_digits_json(doc)
    assert images[0].encoded == _png() and images[1].pixels is not None and options == {}
    with pytest.raises(InvalidInput, match="unknown field"):
        rest_codec.parse_digits_json({"images": [], "extra": 1})
