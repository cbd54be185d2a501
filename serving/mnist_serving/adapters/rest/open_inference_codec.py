"""The Open Inference Protocol's REST bodies ⇄ core calls: JSON tensors and binary tensors (a
JSON header followed by each tensor's bytes). The checks are the protocol's
(:mod:`mnist_serving.adapters.open_inference`); this reads and writes the REST form."""

from __future__ import annotations

from typing import Any

import numpy as np

from mnist_contract.model import MODEL_NAME
from mnist_contract.open_inference import INPUT_DATATYPES
from mnist_serving.adapters.open_inference import (
    InferCall,
    Tensor,
    binary_elements,
    check_parameters,
    images_from,
    output_array,
    outputs_from,
    parameters_object,
    raw_bytes,
    signature_of,
    timeout_of,
    whole,
)
from mnist_serving.core.inference import PredictResult
from mnist_serving.errors import InvalidInput


def parse_rest(doc: Any, binary: bytes) -> InferCall:
    """An :class:`InferCall` from a V2 JSON body (and the bytes after it, if binary)."""
    if not isinstance(doc, dict):
        raise InvalidInput('request body must be a JSON object like {"inputs": [...]}')
    request_id = doc.get("id", "")
    if not isinstance(request_id, str):
        raise InvalidInput("'id' must be a string")
    parameters = parameters_object(doc.get("parameters", {}), "request")
    check_parameters(parameters, "request")
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list):
        raise InvalidInput("'inputs' must be a list of tensors")
    signature = signature_of(parameters)
    tensors, offset = [], 0
    for i, item in enumerate(raw_inputs):
        tensor, offset = _rest_tensor(i, item, binary, offset)
        tensors.append(tensor)
    if offset != len(binary):
        raise InvalidInput(
            f"{len(binary) - offset:,} bytes after the last binary tensor: binary_data_size "
            "does not account for the whole body"
        )
    binary_output = parameters.get("binary_data_output", False)
    if not isinstance(binary_output, bool):
        raise InvalidInput("parameter binary_data_output must be true or false")
    requested = doc.get("outputs", [])
    if not isinstance(requested, list) or not all(isinstance(o, dict) for o in requested):
        raise InvalidInput("'outputs' must be a list of {\"name\": ...} objects")
    named = [
        (o.get("name"), parameters_object(o.get("parameters", {}), f"output {o.get('name')!r}"))
        for o in requested
    ]
    return InferCall(
        signature,
        images_from(tensors, signature),
        request_id,
        outputs_from(named, signature, binary_output),
        timeout_of(parameters),
    )


def _rest_tensor(index: int, item: Any, binary: bytes, offset: int) -> tuple[Tensor, int]:
    if not isinstance(item, dict):
        raise InvalidInput(f"input {index} must be an object with name, shape, datatype, data")
    name, datatype, shape = item.get("name"), item.get("datatype"), item.get("shape")
    where = f"input {name!r}"
    parameters = parameters_object(item.get("parameters", {}), where)
    check_parameters(parameters, where)
    size = parameters.get("binary_data_size")
    if size is None:
        if "data" not in item:
            raise InvalidInput(f"{where} has neither 'data' nor a binary_data_size parameter")
        return Tensor(name, datatype, shape, _json_elements(item["data"], datatype, where)), offset
    if "data" in item:
        raise InvalidInput(f"{where} has both 'data' and binary_data_size: send one")
    size = whole(size)
    if size is None or size < 0:
        raise InvalidInput(f"{where}: binary_data_size must be a whole number of bytes")
    if offset + size > len(binary):
        raise InvalidInput(
            f"{where}: binary_data_size {size:,} runs past the body's end "
            f"({len(binary) - offset:,} bytes of binary data left)"
        )
    chunk = binary[offset : offset + size]
    return Tensor(name, datatype, shape, binary_elements(chunk, datatype, where)), offset + size


def _json_elements(data: Any, datatype: Any, where: str) -> np.ndarray | None:
    if datatype not in INPUT_DATATYPES:
        return None  # refused with the datatype's own message
    if not isinstance(data, list):
        raise InvalidInput(f"{where}: 'data' must be a list of numbers (flat or nested)")
    try:
        with np.errstate(over="ignore"):
            array = np.array(data, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(
            f"{where}: 'data' holds values that are not numbers, or rows of different lengths"
        ) from exc
    if (
        datatype == "UINT8"
        and array.size
        and ((array != np.floor(array)).any() or array.min() < 0 or array.max() > 255)
    ):
        raise InvalidInput(f"{where}: UINT8 data must be whole numbers 0-255")
    if datatype == "FP32":
        with np.errstate(over="ignore"):
            array = array.astype(np.float32)
        if not np.isfinite(array).all():
            raise InvalidInput(f"{where}: FP32 data holds NaN, infinity or values beyond float32")
    if _has_bool(data):
        raise InvalidInput(f"{where}: 'data' must hold numbers, not true/false")
    return array.ravel()


def _has_bool(data: list[Any]) -> bool:
    first = data
    while isinstance(first, list) and first:
        first = first[0]
    return isinstance(first, bool)


def render_rest(call: InferCall, result: PredictResult) -> tuple[dict[str, Any], list[bytes]]:
    """The JSON answer and the binary tensors to send after it (none when all are JSON)."""
    outputs, tails = [], []
    for output in call.outputs:
        datatype, array = output_array(result, output)
        entry: dict[str, Any] = {
            "name": output.name,
            "datatype": datatype,
            "shape": list(array.shape),
        }
        if output.binary:
            data = raw_bytes(datatype, array)
            entry["parameters"] = {"binary_data_size": len(data)}
            tails.append(data)
        elif datatype == "BYTES":
            entry["data"] = [s.decode() for s in array.ravel()]
        else:
            entry["data"] = array.ravel()
        outputs.append(entry)
    answer: dict[str, Any] = {
        "model_name": MODEL_NAME,
        "model_version": str(result.version),
        "outputs": outputs,
    }
    if call.request_id:
        answer["id"] = call.request_id
    return answer, tails
