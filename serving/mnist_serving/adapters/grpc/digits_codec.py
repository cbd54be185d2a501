"""The digits service's gRPC messages (``mnist.v1.DigitClassifier``) ⇄ core calls. Pure
functions, no gRPC."""

from __future__ import annotations

import numpy as np

from mnist_contract.model import top_k, top_k_problem
from mnist_contract.protos import digits_pb2
from mnist_serving.core.digits import ClassifyResult, DigitImage
from mnist_serving.errors import InvalidInput

FRAME_BYTES = 28 * 28


def classify_images(request: digits_pb2.ClassifyRequest) -> list[DigitImage]:
    problem = top_k_problem(request.top_k)
    if problem:
        raise InvalidInput(problem)
    return [_digit_image(i, image) for i, image in enumerate(request.images)]


def _digit_image(index: int, image: digits_pb2.Image) -> DigitImage:
    kind = image.WhichOneof("data")
    if kind == "encoded":
        return DigitImage(encoded=image.encoded)
    if kind == "raw":
        if len(image.raw) != FRAME_BYTES:
            raise InvalidInput(
                f"image {index}: raw must be {FRAME_BYTES} bytes (28×28 uint8), "
                f"got {len(image.raw)}"
            )
        return DigitImage(pixels=np.frombuffer(image.raw, np.uint8).reshape(28, 28))
    raise InvalidInput(f"image {index}: set either 'encoded' (an image file) or 'raw' (784 bytes)")


def classify_response(
    request: digits_pb2.ClassifyRequest, result: ClassifyResult
) -> digits_pb2.ClassifyResponse:
    response = digits_pb2.ClassifyResponse(model_version=result.version)
    for c in result.results:
        item = response.results.add(digit=c.digit, confidence=float(c.probabilities[c.digit]))
        item.probabilities.extend(c.probabilities.tolist())
        item.top_k.extend(
            digits_pb2.Candidate(digit=d, probability=p)
            for d, p in top_k(c.probabilities, request.top_k)
        )
        if request.return_preprocessed:
            item.preprocessed = c.frame.tobytes()
    return response
