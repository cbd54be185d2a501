"""The Open Inference Protocol's gRPC messages ⇄ core calls: ``raw_input_contents`` or typed
``contents`` in, raw or typed answers out. The checks are the protocol's
(:mod:`mnist_serving.adapters.open_inference`); this reads and writes the protobuf form."""

from __future__ import annotations

from typing import Any

import numpy as np

from mnist_contract.model import MODEL_NAME
from mnist_contract.open_inference import PLATFORM
from mnist_contract.protos import open_inference_pb2 as pb
from mnist_serving.adapters.open_inference import (
    InferCall,
    Tensor,
    binary_elements,
    check_parameters,
    images_from,
    model_metadata,
    output_array,
    outputs_from,
    raw_bytes,
    signature_of,
    timeout_of,
    version_spec,
)
from mnist_serving.core.inference import PredictResult
from mnist_serving.errors import InvalidInput
from mnist_serving.repositories.repository import VersionSpec


def parameter_values(parameters: Any) -> dict[str, Any]:
    """A ``map<string, InferParameter>`` as plain values."""
    values = {}
    for name, parameter in parameters.items():
        which = parameter.WhichOneof("parameter_choice")
        values[name] = getattr(parameter, which) if which else None
    return values


_CONTENTS = {"FP32": "fp32_contents", "UINT8": "uint_contents"}


def parse_grpc(request: pb.ModelInferRequest) -> tuple[VersionSpec, InferCall]:
    spec = version_spec(request.model_name, request.model_version)
    parameters = parameter_values(request.parameters)
    check_parameters(parameters, "request")
    signature = signature_of(parameters)
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise InvalidInput(
            f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs: send one per input"
        )
    tensors = []
    for i, tensor in enumerate(request.inputs):
        where = f"input {tensor.name!r}"
        check_parameters(parameter_values(tensor.parameters), where)
        elements: np.ndarray | None = None
        if raw:
            if tensor.HasField("contents"):
                raise InvalidInput(
                    f"{where} has contents while raw_input_contents is used: send one"
                )
            elements = binary_elements(raw[i], tensor.datatype, where)
        elif tensor.datatype in _CONTENTS:
            values = getattr(tensor.contents, _CONTENTS[tensor.datatype])
            elements = np.array(
                values, dtype=np.float32 if tensor.datatype == "FP32" else np.uint32
            )
            if tensor.datatype == "UINT8" and elements.size and elements.max() > 255:
                raise InvalidInput(f"{where}: UINT8 contents must be 0-255")
            if tensor.datatype == "FP32" and not np.isfinite(elements).all():
                raise InvalidInput(f"{where}: FP32 contents hold NaN or infinity")
        tensors.append(Tensor(tensor.name, tensor.datatype, list(tensor.shape), elements))
    binary = parameters.get("binary_data_output", bool(raw))
    if not isinstance(binary, bool):
        raise InvalidInput("parameter binary_data_output must be a bool_param")
    named = [(o.name, parameter_values(o.parameters)) for o in request.outputs]
    call = InferCall(
        signature,
        images_from(tensors, signature),
        request.id,
        outputs_from(named, signature, binary),
        timeout_of(parameters),
    )
    return spec, call


def render_grpc(call: InferCall, result: PredictResult) -> pb.ModelInferResponse:
    """The answer, raw (``raw_output_contents``) when every output is binary, typed otherwise:
    the protocol keeps the two apart within one response."""
    response = pb.ModelInferResponse(
        model_name=MODEL_NAME, model_version=str(result.version), id=call.request_id
    )
    raw = all(o.binary for o in call.outputs)
    for output in call.outputs:
        datatype, array = output_array(result, output)
        tensor = response.outputs.add(name=output.name, datatype=datatype, shape=list(array.shape))
        if raw:
            response.raw_output_contents.append(raw_bytes(datatype, array))
        elif datatype == "BYTES":
            tensor.contents.bytes_contents.extend(array.ravel().tolist())
        else:
            tensor.contents.fp32_contents.extend(array.ravel().tolist())
    return response


def model_metadata_message(versions: list[int]) -> pb.ModelMetadataResponse:
    doc = model_metadata(versions)
    response = pb.ModelMetadataResponse(
        name=doc["name"], versions=doc["versions"], platform=PLATFORM
    )
    for kind in ("inputs", "outputs"):
        for tensor in doc[kind]:
            getattr(response, kind).add(**tensor)
    return response
