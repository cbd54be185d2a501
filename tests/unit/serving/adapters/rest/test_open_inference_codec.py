"""The Open Inference Protocol's REST bodies: JSON tensors, binary tensors, the answer."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_serving.adapters.rest import open_inference_codec as codec
from mnist_serving.core.inference import PredictResult
from mnist_serving.errors import InvalidInput


def _doc(**extra: object) -> dict[str, object]:
    tensor = {"name": "images", "datatype": "UINT8", "shape": [1, 784], "data": [0] * 784}
    return {"id": "r1", "inputs": [tensor], **extra}


def test_json_tensors_and_the_answer() -> None:
    call = codec.parse_rest(_doc(), b"")
    assert call.images.shape == (1, 28, 28, 1) and call.request_id == "r1"
    probs = np.full((1, 10), 0.1, np.float32)
    answer, tails = codec.render_rest(call, PredictResult({"probabilities": probs}, 2))
    assert tails == [] and answer["id"] == "r1" and answer["model_version"] == "2"
    (output,) = answer["outputs"]
    assert output["shape"] == [1, 10] and len(output["data"]) == 10


def test_binary_tensors_in_and_out() -> None:
    pixels = (np.arange(784) % 256).astype(np.uint8)
    tensor = {
        "name": "images",
        "datatype": "UINT8",
        "shape": [1, 784],
        "parameters": {"binary_data_size": 784},
    }
    call = codec.parse_rest(
        {"inputs": [tensor], "parameters": {"binary_data_output": True}}, pixels.tobytes()
    )
    assert np.allclose(call.images.ravel(), pixels / 255, atol=1e-6)
    probs = np.full((1, 10), 0.1, np.float32)
    answer, tails = codec.render_rest(call, PredictResult({"probabilities": probs}, 2))
    assert tails == [probs.tobytes()]
    assert answer["outputs"][0]["parameters"] == {"binary_data_size": 40}


@pytest.mark.parametrize(
    ("doc", "binary", "message"),
    [
        ([], b"", "must be a JSON object"),
        ({"inputs": {}}, b"", "'inputs' must be a list"),
        ({"inputs": [], "id": 3}, b"", "'id' must be a string"),
        (
            {"inputs": [{"name": "images", "datatype": "FP32", "shape": [1, 784]}]},
            b"",
            "neither 'data' nor a binary_data_size",
        ),
        (
            {
                "inputs": [
                    {"name": "images", "datatype": "UINT8", "shape": [1, 784], "data": [300] * 784}
                ]
            },
            b"",
            "whole numbers 0-255",
        ),
        (
            {
                "inputs": [
                    {"name": "images", "datatype": "FP32", "shape": [1, 784], "data": [True] * 784}
                ]
            },
            b"",
            "not true/false",
        ),
        (
            {
                "inputs": [
                    {
                        "name": "images",
                        "datatype": "UINT8",
                        "shape": [1, 784],
                        "parameters": {"binary_data_size": 900},
                    }
                ]
            },
            bytes(784),
            "runs past",
        ),
        (
            {
                "inputs": [
                    {
                        "name": "images",
                        "datatype": "UINT8",
                        "shape": [1, 784],
                        "parameters": {"binary_data_size": 784},
                    }
                ]
            },
            bytes(790),
            "6 bytes after",
        ),
    ],
)
def test_a_bad_body_is_named(doc: object, binary: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        codec.parse_rest(doc, binary)
