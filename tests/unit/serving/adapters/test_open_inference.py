"""The Open Inference Protocol's checks that both transports share."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_serving.adapters import open_inference as v2
from mnist_serving.core.inference import PredictResult
from mnist_serving.errors import InvalidInput, NotFound
from mnist_serving.repositories.repository import VersionSpec


def _tensor(datatype: str, shape: list[int], elements: np.ndarray | None) -> v2.Tensor:
    return v2.Tensor("images", datatype, shape, elements)


def test_images_in_every_layout_and_both_datatypes() -> None:
    pixels = np.arange(784, dtype=np.float64) % 256
    for shape in ([1, 784], [1, 28, 28], [1, 28, 28, 1]):
        uint8 = v2.images_from([_tensor("UINT8", shape, pixels)], "serving_default")
        assert uint8.shape == (1, 28, 28, 1) and uint8.max() == pytest.approx(1.0)
    flat = v2.images_from([_tensor("FP32", [1, 784], pixels / 255)], "predict_images")
    assert flat.shape == (1, 784) and flat.dtype == np.float32


@pytest.mark.parametrize(
    ("tensors", "message"),
    [
        ([], "exactly one input"),
        ([v2.Tensor("other", "FP32", [1, 784], np.zeros(784))], "unknown input 'other'"),
        ([_tensor("INT8", [1, 784], np.zeros(784))], "known datatype the model does not take"),
        ([_tensor("PIXELS", [1, 784], np.zeros(784))], "not a datatype"),
        ([_tensor("FP32", [1, 10], np.zeros(10))], r"must have shape \[N,28,28,1\] or \[N,784\]"),
        ([_tensor("FP32", [0, 784], np.zeros(0))], "empty batch"),
        ([_tensor("FP32", [1, 784], None)], "has no data"),
        ([_tensor("FP32", [2, 784], np.zeros(784))], "784 elements but shape"),
        ([_tensor("FP32", [1, -1], np.zeros(784))], "whole numbers ≥ 0"),
    ],
)
def test_a_bad_input_is_named(tensors: list[v2.Tensor], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        v2.images_from(tensors, "serving_default")


def test_parameters_signature_timeout_and_outputs() -> None:
    assert v2.signature_of({}) == "serving_default"
    assert v2.signature_of({"signature_name": ""}) == "serving_default"
    with pytest.raises(InvalidInput, match="signature_name must be one of"):
        v2.signature_of({"signature_name": "other"})
    assert v2.timeout_of({"timeout": 2_500_000}) == 2.5 and v2.timeout_of({}) is None
    with pytest.raises(InvalidInput, match="whole microseconds"):
        v2.timeout_of({"timeout": -1})
    with pytest.raises(InvalidInput, match="shared memory is not supported"):
        v2.check_parameters({"shared_memory_region": "r"}, "input 'images'")
    (output,) = v2.outputs_from(
        [("probabilities", {"classification": 3})], "serving_default", False
    )
    assert (output.name, output.binary, output.classes) == ("probabilities", False, 3)
    with pytest.raises(InvalidInput, match="unknown output 'scores'"):
        v2.outputs_from([("scores", {})], "serving_default", False)


def test_outputs_as_probabilities_or_classes() -> None:
    probs = np.zeros((1, 10), np.float32)
    probs[0, 7], probs[0, 1] = 0.9, 0.1
    result = PredictResult({"probabilities": probs}, 1)
    datatype, array = v2.output_array(result, v2.Output("probabilities", False, 2))
    assert datatype == "BYTES" and array[0][0].decode().endswith(":7")
    datatype, array = v2.output_array(result, v2.Output("probabilities", True))
    assert datatype == "FP32" and v2.raw_bytes(datatype, array) == probs.tobytes()


def test_versions_are_numbers_or_labels_of_our_model() -> None:
    assert v2.version_spec("mnist", "3") == VersionSpec(version=3)
    assert v2.version_spec("mnist", "stable") == VersionSpec(label="stable")
    assert v2.version_spec("mnist", "") == VersionSpec()
    with pytest.raises(NotFound):
        v2.version_spec("other", "")
