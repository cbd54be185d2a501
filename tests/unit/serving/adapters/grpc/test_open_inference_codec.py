"""The Open Inference Protocol's gRPC messages: raw and typed contents, raw and typed answers."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_contract.protos import open_inference_pb2 as pb
from mnist_serving.adapters.grpc import open_inference_codec as codec
from mnist_serving.core.inference import PredictResult
from mnist_serving.errors import InvalidInput
from mnist_serving.repositories.repository import VersionSpec


def _request(raw: bool) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="mnist", model_version="stable", id="q")
    tensor = request.inputs.add(name="images", datatype="FP32", shape=[1, 784])
    pixels = np.linspace(0, 1, 784, dtype=np.float32)
    if raw:
        request.raw_input_contents.append(pixels.tobytes())
    else:
        tensor.contents.fp32_contents.extend(pixels.tolist())
    return request


def test_raw_and_typed_contents_read_alike_and_answer_alike() -> None:
    probs = np.full((1, 10), 0.1, np.float32)
    for raw in (True, False):
        spec, call = codec.parse_grpc(_request(raw))
        assert spec == VersionSpec(label="stable") and call.images.shape == (1, 28, 28, 1)
        answer = codec.render_grpc(call, PredictResult({"probabilities": probs}, 3))
        assert answer.id == "q" and answer.model_version == "3"
        if raw:  # raw in: raw out unless asked otherwise
            assert answer.raw_output_contents[0] == probs.tobytes()
        else:
            assert list(answer.outputs[0].contents.fp32_contents) == pytest.approx([0.1] * 10)


def test_mixed_or_miscounted_contents_are_refused() -> None:
    request = _request(raw=True)
    request.inputs[0].contents.fp32_contents.append(0.0)
    with pytest.raises(InvalidInput, match="has contents while raw_input_contents is used"):
        codec.parse_grpc(request)
    request = _request(raw=True)
    request.raw_input_contents.append(b"")
    with pytest.raises(InvalidInput, match="2 raw_input_contents for 1 inputs"):
        codec.parse_grpc(request)
    typed = pb.ModelInferRequest(model_name="mnist")
    typed.inputs.add(name="images", datatype="UINT8", shape=[1, 784]).contents.uint_contents.extend(
        [256] * 784
    )
    with pytest.raises(InvalidInput, match="UINT8 contents must be 0-255"):
        codec.parse_grpc(typed)


def test_model_metadata_message() -> None:
    message = codec.model_metadata_message([3, 2])
    assert message.name == "mnist" and list(message.versions) == ["3", "2"]
    assert message.inputs[0].name == "images" and message.outputs[0].name == "probabilities"
