"""The digits API's REST bodies as pure functions: JSON images, raw frames, options, answers."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from mnist_serving.adapters.rest import digits_codec as codec
from mnist_serving.core.digits import Classification, ClassifyResult
from mnist_serving.errors import InvalidInput


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (28, 28), 255).save(buffer, "PNG")
    return buffer.getvalue()


def test_json_images_b64_and_pixels() -> None:
    doc = {"images": [{"b64": base64.b64encode(_png()).decode()}, [[0, 255], [255, 0]]]}
    images, options = codec.parse_digits_json(doc)
    assert images[0].encoded == _png() and images[1].pixels is not None and options == {}
    with pytest.raises(InvalidInput, match="unknown field"):
        codec.parse_digits_json({"images": [], "extra": 1})
    with pytest.raises(InvalidInput, match="'b64' is not valid base64"):
        codec.parse_digits_json({"images": [{"b64": "not base64!"}]})
    with pytest.raises(InvalidInput, match=r"image 0: pixels must be numbers \(found booleans\)"):
        codec.parse_digits_json({"images": [[[True, False]]]})
    with pytest.raises(InvalidInput, match="image 0: pixel array must be 2-D"):
        codec.parse_digits_json({"images": [[1, 2, 3]]})


def test_octet_stream_is_whole_frames() -> None:
    body = (np.arange(784 * 32) % 251).astype(np.uint8).tobytes()
    images = codec.parse_octet_stream(body)
    assert len(images) == 32 and images[31].pixels is not None
    assert images[31].pixels.shape == (28, 28) and images[31].pixels.dtype == np.uint8
    assert images[31].pixels.tobytes() == body[31 * 784 :]
    with pytest.raises(InvalidInput, match="N×784 bytes"):
        codec.parse_octet_stream(bytes(785))
    with pytest.raises(InvalidInput, match="got 0 bytes"):
        codec.parse_octet_stream(b"")


def test_digits_options_from_json_and_query_text() -> None:
    assert codec.parse_options({"top_k": "3", "return_preprocessed": "TRUE"}) == (3, True, None)
    assert codec.parse_options({"version": 2}) == (0, False, "2")
    for bad in ({"top_k": 11}, {"top_k": True}, {"top_k": "-1"}, {"return_preprocessed": "yes"}):
        with pytest.raises(InvalidInput):
            codec.parse_options(bad)
    with pytest.raises(InvalidInput, match="version must be a version number or a label"):
        codec.parse_options({"version": [1]})


def test_classify_renders_top_k_most_probable_first() -> None:
    probabilities = np.array([0.1, 0.3, 0.3, 0.2, 0.1, 0, 0, 0, 0, 0], np.float32)
    frame = np.zeros((28, 28), np.uint8)
    result = ClassifyResult([Classification(1, 0.3, probabilities, frame)], 4)
    doc = codec.render_classify(result, top_k=3, preprocessed=True)
    assert [c["digit"] for c in doc["predictions"][0]["top_k"]] == [1, 2, 3]  # ties: lower first
    assert doc["model_version"] == 4 and doc["predictions"][0]["preprocessed"] is frame
    assert (
        "top_k" not in codec.render_classify(result, top_k=0, preprocessed=False)["predictions"][0]
    )
