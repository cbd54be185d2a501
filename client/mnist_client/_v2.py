"""The Open Inference Protocol ("V2") for the SDK: requests and answers for any V2 server that
hosts this model contract (the gateway, Triton, KServe, MLServer).

Images go as one FP32 ``images`` tensor [N, 28, 28, 1] (the contract's declared input, so a
server that checks datatypes takes it), as raw bytes: the binary tensor extension over REST,
``raw_input_contents`` over gRPC. The ``probabilities`` output is asked for as raw bytes too;
a server that answers it as JSON or typed contents is read all the same.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import numpy as np

from mnist_client._codec import (
    Item,
    Prediction,
    frames_for_tfserving,
    predictions_from_probabilities,
)
from mnist_client._errors import ServerError
from mnist_contract.model import CLASSES, INPUT_NAME, SERVING_DEFAULT
from mnist_contract.open_inference import HEADER_LENGTH, FramingError, split
from mnist_contract.protos import open_inference_pb2 as pb

OUTPUT = SERVING_DEFAULT.output


def _images(items: list[Item]) -> np.ndarray:
    return np.ascontiguousarray(frames_for_tfserving(items), "<f4")


def _request_id() -> str:
    # Every request carries an id: servers echo it, and some (KServe) answer none without it.
    return uuid.uuid4().hex


def rest_body(items: list[Item]) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of a binary V2 REST request."""
    images = _images(items)
    data = images.tobytes()
    header: dict[str, Any] = {
        "inputs": [
            {
                "name": INPUT_NAME,
                "datatype": "FP32",
                "shape": list(images.shape),
                "parameters": {"binary_data_size": len(data)},
            }
        ],
        "outputs": [{"name": OUTPUT, "parameters": {"binary_data": True}}],
        "id": _request_id(),
    }
    encoded = json.dumps(header).encode()
    headers = {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(len(encoded))}
    return encoded + data, headers


def _version(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def parse_rest(body: bytes, header_length: str | None, top_k: int) -> list[Prediction]:
    try:
        header, binary = split(body, header_length)
        doc = json.loads(header)
        offset = 0
        for output in doc["outputs"]:
            size = (output.get("parameters") or {}).get("binary_data_size")
            if output["name"] == OUTPUT:
                if size is not None:
                    values = np.frombuffer(binary[offset : offset + size], "<f4")
                else:
                    values = np.asarray(output["data"], np.float64).ravel()
                probabilities = values.reshape(-1, CLASSES)
                break
            offset += size or 0
        else:
            raise KeyError(f"no '{OUTPUT}' output")
        version = _version(str(doc.get("model_version", "")))
    except (FramingError, ValueError, KeyError, TypeError) as exc:
        raise ServerError(f"unexpected V2 answer: {exc}") from None
    return predictions_from_probabilities(probabilities, version, top_k)


def grpc_request(items: list[Item], model: str) -> pb.ModelInferRequest:
    images = _images(items)
    request = pb.ModelInferRequest(model_name=model, id=_request_id())
    request.inputs.add(name=INPUT_NAME, datatype="FP32", shape=list(images.shape))
    request.outputs.add(name=OUTPUT)
    request.raw_input_contents.append(images.tobytes())
    return request


def parse_grpc(answer: pb.ModelInferResponse, top_k: int) -> list[Prediction]:
    for index, output in enumerate(answer.outputs):
        if output.name != OUTPUT:
            continue
        if index < len(answer.raw_output_contents):
            values = np.frombuffer(answer.raw_output_contents[index], "<f4")
        else:
            values = np.asarray(output.contents.fp32_contents, np.float64)
        try:
            probabilities = values.reshape(-1, CLASSES)
        except ValueError as exc:
            raise ServerError(f"unexpected V2 answer: {exc}") from None
        return predictions_from_probabilities(probabilities, _version(answer.model_version), top_k)
    raise ServerError(f"unexpected V2 answer: no '{OUTPUT}' output")
