"""The Open Inference Protocol ("V2"), what both transports share: the checks of an inference
request, the outputs asked for, and the metadata answers. Pure functions, no HTTP, no gRPC.

A V2 inference request becomes an :class:`InferCall` (the images as the signature takes them,
the outputs asked for and how to send them) by the REST codec
(:mod:`mnist_serving.adapters.rest.open_inference_codec`) or the gRPC one
(:mod:`mnist_serving.adapters.grpc.open_inference_codec`); both go through the same checks
(:func:`images_from`), so a REST and a gRPC caller get the same refusal for the same mistake.
Versions are strings in V2: a number, or one of our labels (``stable``) where the protocol has
room for a version (the URL's ``/versions/{v}``, the message's ``model_version``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mnist_contract.model import INPUT_NAME, MAX_TOP_K, MODEL_NAME, SERVING_DEFAULT, SIGNATURES
from mnist_contract.open_inference import (
    ALL_DATATYPES,
    DTYPES,
    EXTENSIONS,
    IMAGE_SHAPES,
    INPUT_DATATYPES,
    OUTPUT_DATATYPE,
    PLATFORM,
    bytes_elements,
    classification_strings,
    model_tensors,
)
from mnist_contract.pixels import model_input
from mnist_serving.core.inference import InferenceCore, PredictResult
from mnist_serving.errors import InvalidInput
from mnist_serving.repositories.repository import VersionSpec

# Parameters we know but cannot honour: refused with the reason instead of silently ignored.
_UNSUPPORTED = {
    "shared_memory_region": "shared memory is not supported; send the tensor's data",
    "sequence_id": "sequences are not supported: the model is stateless",
}
SHAPES_TEXT = " or ".join("[N," + ",".join(map(str, s)) + "]" for s in IMAGE_SHAPES)


@dataclass(frozen=True)
class Output:
    """One output asked for: as raw bytes or typed, and as classes (top-k strings) or not."""

    name: str
    binary: bool
    classes: int = 0


@dataclass(frozen=True)
class InferCall:
    signature: str
    images: np.ndarray  # float32, in the signature's layout
    request_id: str
    outputs: tuple[Output, ...]
    timeout_s: float | None  # the caller's own limit (Triton's ``timeout`` parameter, µs)


@dataclass(frozen=True)
class Tensor:
    """One input as the wire carried it, before any check."""

    name: Any
    datatype: Any
    shape: Any
    elements: np.ndarray | None  # None: the wire form had no data for it


def version_spec(model: str, version: str) -> VersionSpec:
    """The version a V2 path or message names, after checking it names our model. Versions are
    strings in V2: digits name a version number (one not served is not found, like any other),
    anything else one of our labels."""
    spec = VersionSpec.from_text(version)
    InferenceCore.require_model(model, spec)
    return spec


# -- the checks both wire forms share ------------------------------------------------------


def check_parameters(parameters: dict[str, Any], where: str) -> None:
    for name, reason in _UNSUPPORTED.items():
        if name in parameters:
            raise InvalidInput(f"{where}: {reason} ({name!r})")


def signature_of(parameters: dict[str, Any]) -> str:
    """The signature a request asks for with ``signature_name`` (TF Serving's word); the default
    one when absent."""
    name = parameters.get("signature_name", SERVING_DEFAULT.name)
    if name == "":  # as in TF Serving, empty names the default signature
        name = SERVING_DEFAULT.name
    if not isinstance(name, str) or name not in SIGNATURES:
        raise InvalidInput(
            f"parameter signature_name must be one of {', '.join(SIGNATURES)}, got {name!r}"
        )
    return name


def timeout_of(parameters: dict[str, Any]) -> float | None:
    value = parameters.get("timeout")
    if value is None:
        return None
    micros = whole(value)
    if micros is None or micros < 0:
        raise InvalidInput(f"parameter timeout must be whole microseconds ≥ 0, got {value!r}")
    return micros / 1e6 if micros else None


def images_from(tensors: list[Tensor], signature: str) -> np.ndarray:
    """The one image tensor, checked and converted to float32 in ``signature``'s layout."""
    if len(tensors) != 1:
        raise InvalidInput(f"the model takes exactly one input, '{INPUT_NAME}'; got {len(tensors)}")
    (tensor,) = tensors
    if tensor.name != INPUT_NAME:
        raise InvalidInput(f"unknown input {tensor.name!r}; the model's input is '{INPUT_NAME}'")
    shape = _shape(tensor.shape, INPUT_NAME)
    if tensor.datatype not in INPUT_DATATYPES:
        known = (
            "a known datatype the model does not take"
            if tensor.datatype in ALL_DATATYPES
            else "not a datatype"
        )
        raise InvalidInput(
            f"input '{INPUT_NAME}' datatype {tensor.datatype!r} is {known}; send FP32 pixels in "
            "[0, 1] or UINT8 pixels 0-255"
        )
    if len(shape) < 2 or tuple(shape[1:]) not in IMAGE_SHAPES:
        raise InvalidInput(f"input '{INPUT_NAME}' must have shape {SHAPES_TEXT}, got {shape}")
    if shape[0] == 0:
        raise InvalidInput("no images in the request (an empty batch)")
    if tensor.elements is None:
        raise InvalidInput(f"input '{INPUT_NAME}' has no data")
    if tensor.elements.size != math.prod(shape):
        raise InvalidInput(
            f"input '{INPUT_NAME}' has {tensor.elements.size:,} elements but shape {shape} "
            f"holds {math.prod(shape):,}"
        )
    pixels = tensor.elements.reshape(shape[0], -1)
    if tensor.datatype == "UINT8":
        images = model_input(pixels.astype(np.uint8).reshape(-1, 28, 28))
    else:
        images = pixels.astype(np.float32, copy=False)
    return images.reshape(-1, *SIGNATURES[signature].input_shape)


def whole(value: Any) -> int | None:
    """A JSON whole number (``3`` or ``3.0``: JSON Schema calls both integers) as int, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _shape(value: Any, name: str) -> list[int]:
    dims = [whole(d) for d in value] if isinstance(value, list | tuple) else [None]
    if not dims or any(d is None or d < 0 for d in dims):
        raise InvalidInput(
            f"input {name!r} shape must be a list of whole numbers ≥ 0, got {value!r}"
        )
    return [d for d in dims if d is not None]


def outputs_from(
    requested: list[tuple[Any, dict[str, Any]]], signature: str, binary: bool
) -> tuple[Output, ...]:
    """The outputs asked for (all when none are named), each with its form."""
    name = SIGNATURES[signature].output
    if not requested:
        return (Output(name, binary),)
    outputs = []
    for asked, parameters in requested:
        if asked != name:
            raise InvalidInput(f"unknown output {asked!r}; the model's output is '{name}'")
        check_parameters(parameters, f"output {asked!r}")
        classes = whole(parameters.get("classification", 0))
        if classes is None or not 0 <= classes <= MAX_TOP_K:
            raise InvalidInput(
                f"output {asked!r}: classification must be 0-{MAX_TOP_K}, "
                f"got {parameters.get('classification')!r}"
            )
        wants_binary = parameters.get("binary_data", binary)
        if not isinstance(wants_binary, bool):
            raise InvalidInput(f"output {asked!r}: binary_data must be true or false")
        outputs.append(Output(name, wants_binary, classes))
    if len(outputs) > 1:
        raise InvalidInput(f"output '{name}' is named more than once")
    return tuple(outputs)


def output_array(result: PredictResult, output: Output) -> tuple[str, np.ndarray]:
    """(datatype, array) of one output: the probabilities, or their top classes as strings."""
    probabilities = result.outputs[output.name]
    if output.classes:
        strings = classification_strings(probabilities, output.classes)
        return "BYTES", np.array([[s.encode() for s in row] for row in strings], dtype=object)
    return OUTPUT_DATATYPE, probabilities


def raw_bytes(datatype: str, array: np.ndarray) -> bytes:
    if datatype == "BYTES":
        return bytes_elements(list(array.ravel()))
    return np.ascontiguousarray(array, DTYPES[datatype]).tobytes()


def parameters_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{where}: 'parameters' must be an object")
    return value


def binary_elements(chunk: bytes, datatype: Any, where: str) -> np.ndarray | None:
    if datatype not in INPUT_DATATYPES:
        return None
    dtype = DTYPES[datatype]
    if len(chunk) % dtype.itemsize:
        raise InvalidInput(
            f"{where}: {len(chunk)} bytes is not a whole number of {datatype} elements"
        )
    array = np.frombuffer(chunk, dtype)
    if datatype == "FP32" and not np.isfinite(array).all():
        raise InvalidInput(f"{where}: FP32 data holds NaN or infinity")
    return array


def server_metadata(version: str) -> dict[str, Any]:
    return {"name": "mnist-serving", "version": version, "extensions": list(EXTENSIONS)}


def model_metadata(versions: list[int]) -> dict[str, Any]:
    return {
        "name": MODEL_NAME,
        "versions": [str(v) for v in versions],
        "platform": PLATFORM,
        **model_tensors(),
    }
