"""TF Serving's gRPC messages as pure functions: model specs, Predict, metadata, status."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_contract.model import SIGNATURES
from mnist_contract.protos import tensorflow_serving_pb2 as tfs
from mnist_contract.tensors import array_to_tensor, tensor_to_array
from mnist_serving.adapters.grpc import tfserving_codec as codec
from mnist_serving.adapters.rest import tfserving_codec as rest_codec
from mnist_serving.core.inference import PredictResult
from mnist_serving.errors import InvalidInput, NotFound
from mnist_serving.repositories.repository import VersionSpec, VersionStatus


def test_model_specs_and_output_filters() -> None:
    spec = tfs.ModelSpec(name="mnist")
    spec.version.value = 2
    assert codec.version_spec(spec) == VersionSpec(version=2)
    assert codec.version_spec(tfs.ModelSpec(name="mnist", version_label="a")).label == "a"
    with pytest.raises(NotFound, match=r"Latest\(other\)"):
        codec.version_spec(tfs.ModelSpec(name="other"))
    request = tfs.PredictRequest(output_filter=["nope"])
    result = PredictResult({"probabilities": np.ones((1, 10), np.float32)}, 1)
    with pytest.raises(InvalidInput, match="output tensor alias not found"):
        codec.predict_response(request, "serving_default", result, as_content=True)
    response = codec.predict_response(tfs.PredictRequest(), "serving_default", result, False)
    assert tensor_to_array(response.outputs["probabilities"]).shape == (1, 10)
    assert response.model_spec.version.value == 1


def test_predict_inputs_name_the_bad_tensor() -> None:
    request = tfs.PredictRequest()
    request.inputs["images"].CopyFrom(array_to_tensor(np.zeros((2, 784), np.float32)))
    assert codec.predict_inputs(request)["images"].shape == (2, 784)
    request.inputs["images"].tensor_content = b"\x00" * 7
    with pytest.raises(InvalidInput, match="input 'images'"):
        codec.predict_inputs(request)


def test_metadata_comes_from_the_one_signature_table() -> None:
    rest = rest_codec.signature_defs()
    grpc = codec.signature_def_map().signature_def
    for name, signature in SIGNATURES.items():
        dims = [int(d["size"]) for d in rest[name]["inputs"]["images"]["tensor_shape"]["dim"]]
        assert tuple(dims) == signature.batched_input_shape
        assert [d.size for d in grpc[name].inputs["images"].tensor_shape.dim] == dims
        assert set(rest[name]["outputs"]) == set(grpc[name].outputs) == {signature.output}
    with pytest.raises(InvalidInput, match="must specify a metadata_field"):
        codec.check_metadata_fields(tfs.GetModelMetadataRequest())
    with pytest.raises(InvalidInput, match="Metadata field other is not supported"):
        codec.check_metadata_fields(tfs.GetModelMetadataRequest(metadata_field=["other"]))


def test_status_carries_the_reason_a_version_ended() -> None:
    answer = codec.status_response([VersionStatus(2, "AVAILABLE"), VersionStatus(3, "END", "bad")])
    first, second = answer.model_version_status
    assert (first.version, first.state, first.status.error_message) == (2, 30, "")
    assert second.status.error_message == "bad" and second.status.error_code != 0


def test_tensors_round_trip_in_both_encodings() -> None:
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    for as_content in (True, False):
        assert np.array_equal(tensor_to_array(array_to_tensor(array, as_content=as_content)), array)
