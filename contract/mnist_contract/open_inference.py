"""The Open Inference Protocol ("KServe V2") as this model speaks it, without TensorFlow.

Shared by the gateway (which reads requests and writes answers) and the SDK (which does the
opposite): the datatype table, the model's V2 description, and the framing of the binary tensor
extension, where a JSON header is followed by the tensors' raw bytes::

    >>> body = frame(b'{"inputs": []}', [b"\\x00\\x01"])
    >>> split(body, str(len(b'{"inputs": []}')))
    (b'{"inputs": []}', b'\\x00\\x01')
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mnist_contract.model import CLASSES, INPUT_NAME, SERVING_DEFAULT, SIGNATURES, top_k

# The HTTP header saying where the JSON header of a binary body ends.
HEADER_LENGTH = "Inference-Header-Content-Length"
# The protocol's element types with a fixed width (BYTES, variable-length, is handled apart).
DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
ALL_DATATYPES = (*DTYPES, "BYTES")
# What the model takes: float pixels in [0, 1], or 8-bit pixels 0-255 (divided by 255).
INPUT_DATATYPES = ("FP32", "UINT8")
OUTPUT_DATATYPE = "FP32"
# One image per row, in either signature's layout (or as bare 28×28 frames).
IMAGE_SHAPES: tuple[tuple[int, ...], ...] = ((28, 28, 1), (784,), (28, 28))
PLATFORM = "tensorflow_savedmodel"
# Extensions as the protocol names them: the binary tensor data extension and Triton's
# classification extension (top-k classes as strings, asked with ``classification: k``).
EXTENSIONS = ("binary_tensor_data", "classification")


class FramingError(ValueError):
    """A binary body whose header length does not fit it; the message says how."""


def model_tensors(signature: str = SERVING_DEFAULT.name) -> dict[str, list[dict[str, Any]]]:
    """The model's inputs and outputs as the protocol's metadata lists them."""
    chosen = SIGNATURES[signature]
    return {
        "inputs": [
            {"name": INPUT_NAME, "datatype": "FP32", "shape": list(chosen.batched_input_shape)}
        ],
        "outputs": [{"name": chosen.output, "datatype": OUTPUT_DATATYPE, "shape": [-1, CLASSES]}],
    }


def split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """(JSON header, binary tail) of a body; all JSON when there is no header length."""
    if header_length is None:
        return body, b""
    text = header_length.strip()
    if not (text.isascii() and text.isdigit()):
        raise FramingError(
            f"{HEADER_LENGTH} must be a whole number of bytes, got {header_length!r}"
        )
    length = int(text)
    if length > len(body):
        raise FramingError(
            f"{HEADER_LENGTH} is {length:,} but the body has only {len(body):,} bytes"
        )
    return body[:length], body[length:]


def frame(header: bytes, tensors: list[bytes]) -> bytes:
    """A binary body: the JSON header, then each tensor's bytes in order."""
    return b"".join((header, *tensors))


def bytes_elements(values: list[bytes]) -> bytes:
    """BYTES elements in the binary layout: each a 4-byte little-endian length, then itself."""
    return b"".join(len(v).to_bytes(4, "little") + v for v in values)


def classification_strings(probabilities: np.ndarray, k: int) -> list[list[str]]:
    """Triton's classification extension: per row, the ``k`` best as ``"value:index"``, most
    probable first (ties: the lower digit first)."""
    return [[f"{p:.6g}:{digit}" for digit, p in top_k(row, k)] for row in probabilities]
