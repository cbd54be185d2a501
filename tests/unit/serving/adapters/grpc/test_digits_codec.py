"""The digits service's gRPC messages as pure functions."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_contract.protos import digits_pb2
from mnist_serving.adapters.grpc import digits_codec as codec
from mnist_serving.core.digits import Classification, ClassifyResult
from mnist_serving.errors import InvalidInput


def test_images_are_checked_by_size_and_kind() -> None:
    request = digits_pb2.ClassifyRequest()
    request.images.add(raw=bytes(783))
    with pytest.raises(InvalidInput, match="raw must be 784 bytes"):
        codec.classify_images(request)
    with pytest.raises(InvalidInput, match="top_k must be an integer 0-10"):
        codec.classify_images(digits_pb2.ClassifyRequest(top_k=11))
    empty = digits_pb2.ClassifyRequest()
    empty.images.add()
    with pytest.raises(InvalidInput, match="image 0: set either 'encoded'"):
        codec.classify_images(empty)
    fine = digits_pb2.ClassifyRequest()
    fine.images.add(raw=bytes(range(256)) * 3 + bytes(16))
    fine.images.add(encoded=b"\x89PNG")
    raw, encoded = codec.classify_images(fine)
    assert raw.pixels is not None and raw.pixels.shape == (28, 28) and encoded.encoded == b"\x89PNG"


def test_classify_renders_top_k_most_probable_first() -> None:
    probabilities = np.array([0.1, 0.3, 0.3, 0.2, 0.1, 0, 0, 0, 0, 0], np.float32)
    frame = np.full((28, 28), 7, np.uint8)
    result = ClassifyResult([Classification(1, 0.3, probabilities, frame)], 4)
    message = codec.classify_response(
        digits_pb2.ClassifyRequest(top_k=3, return_preprocessed=True), result
    )
    assert [c.digit for c in message.results[0].top_k] == [1, 2, 3]  # ties: lower first
    assert message.model_version == 4 and message.results[0].preprocessed == frame.tobytes()
