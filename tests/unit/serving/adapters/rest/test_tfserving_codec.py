"""TF Serving's REST bodies as pure functions: ``:predict`` in both formats, status, metadata."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from mnist_contract.model import SIGNATURES
from mnist_serving.adapters.rest import tfserving_codec as codec
from mnist_serving.core.inference import PredictResult
from mnist_serving.errors import InvalidInput
from mnist_serving.repositories.repository import VersionStatus


def test_predict_bodies_in_both_formats_and_tf_servings_refusals() -> None:
    rows = {"instances": np.zeros((2, 784)).tolist(), "signature_name": "predict_images"}
    signature, inputs, row_format = codec.parse_predict(rows)
    assert signature == "predict_images" and row_format and inputs["images"].shape == (2, 784)
    named = {"inputs": {"images": np.zeros((1, 28, 28, 1)).tolist()}}
    assert codec.parse_predict(named)[1]["images"].shape == (1, 28, 28, 1)
    with pytest.raises(InvalidInput, match="only one of 'inputs' or 'instances'"):
        codec.parse_predict({"inputs": [], "instances": []})
    with pytest.raises(InvalidInput, match="Missing 'inputs' or 'instances' key"):
        codec.parse_predict({"signature_name": "serving_default"})
    with pytest.raises(InvalidInput, match="rows of different lengths"):
        codec.parse_predict({"instances": [[1, 2], [3]]})
    with pytest.raises(InvalidInput, match="single number"):
        codec.parse_predict({"inputs": 3})
    answer = PredictResult({"scores": np.ones((1, 10), np.float32)}, 3)
    assert list(codec.render_predict(answer, row_format=False)) == ["outputs"]
    assert list(codec.render_predict(answer, row_format=True)) == ["predictions"]


def test_instances_named_per_row_become_one_tensor_per_name() -> None:
    doc = {"instances": [{"images": [0.0] * 784}, {"images": [1.0] * 784}]}
    _, inputs, _ = codec.parse_predict(doc)
    assert inputs["images"].shape == (2, 784)
    with pytest.raises(InvalidInput, match="instance 1 does not have the same named inputs"):
        codec.parse_predict({"instances": [{"images": [0.0]}, {"other": [0.0]}]})


def test_the_fast_reader_gives_the_usual_paths_tensor() -> None:
    body = orjson.dumps({"instances": np.linspace(0, 1, 2 * 784).reshape(2, 784).tolist()})
    fast = codec.loads_predict(body)
    _, inputs, _ = codec.parse_predict(fast)
    usual = np.array(orjson.loads(body)["instances"], np.float32)
    assert np.array_equal(inputs["images"], usual)


def test_metadata_and_status_are_tf_servings_json() -> None:
    defs = codec.signature_defs()
    for name, signature in SIGNATURES.items():
        dims = [int(d["size"]) for d in defs[name]["inputs"]["images"]["tensor_shape"]["dim"]]
        assert tuple(dims) == signature.batched_input_shape
        assert set(defs[name]["outputs"]) == {signature.output}
    status = codec.render_status([VersionStatus(2, "AVAILABLE"), VersionStatus(3, "END", "bad")])
    entries = status["model_version_status"]
    assert entries[0] == {
        "version": "2",
        "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""},
    }
    assert entries[1]["status"] == {"error_code": "UNKNOWN", "error_message": "bad"}
