"""TF Serving's gRPC messages ⇄ core calls: Predict, GetModelMetadata, GetModelStatus. Pure
functions, no gRPC: every malformed message becomes an :class:`InvalidInput` whose message
names what was wrong (TF Serving's wording where it has one).
"""

from __future__ import annotations

import numpy as np

from mnist_contract.model import INPUT_NAME, MODEL_NAME, PREDICT_METHOD, SIGNATURES
from mnist_contract.protos import tensorflow_error_pb2 as tf_error
from mnist_contract.protos import tensorflow_pb2 as tf_pb
from mnist_contract.protos import tensorflow_serving_pb2 as tfs
from mnist_contract.tensors import TensorError, array_to_tensor, tensor_to_array
from mnist_serving.core.inference import InferenceCore, PredictResult
from mnist_serving.errors import InvalidInput
from mnist_serving.repositories.repository import VersionSpec, VersionStatus


def version_spec(spec: tfs.ModelSpec) -> VersionSpec:
    """The version a ``ModelSpec`` asks for, after checking it names our model."""
    choice = spec.WhichOneof("version_choice")
    if choice == "version":
        if spec.version.value < 1:
            raise InvalidInput(f"version must be a positive integer, got {spec.version.value}")
        wanted = VersionSpec(version=spec.version.value)
    elif choice == "version_label":
        wanted = VersionSpec(label=spec.version_label)
    else:
        wanted = VersionSpec()
    InferenceCore.require_model(spec.name, wanted)
    return wanted


def predict_inputs(request: tfs.PredictRequest) -> dict[str, np.ndarray]:
    inputs = {}
    for name, tensor in request.inputs.items():
        try:
            inputs[name] = tensor_to_array(tensor)
        except TensorError as exc:
            raise InvalidInput(f"input '{name}': {exc}") from exc
    return inputs


def predict_response(
    request: tfs.PredictRequest, signature: str, result: PredictResult, as_content: bool
) -> tfs.PredictResponse:
    """The outputs the request's ``output_filter`` names (all when empty)."""
    wanted = list(request.output_filter) or list(result.outputs)
    unknown = [name for name in wanted if name not in result.outputs]
    if unknown:
        raise InvalidInput(
            f"output tensor alias not found in signature: {', '.join(unknown)} "
            f"(outputs: {', '.join(result.outputs)})"
        )
    response = tfs.PredictResponse()
    _model_spec(response.model_spec, result.version)
    response.model_spec.signature_name = signature
    for name in wanted:
        response.outputs[name].CopyFrom(
            array_to_tensor(result.outputs[name], as_content=as_content)
        )
    return response


def check_metadata_fields(request: tfs.GetModelMetadataRequest) -> None:
    fields = list(request.metadata_field)
    if not fields:
        raise InvalidInput("GetModelMetadataRequest must specify a metadata_field")
    unsupported = [f for f in fields if f != "signature_def"]
    if unsupported:
        raise InvalidInput(f"Metadata field {unsupported[0]} is not supported")


def metadata_response(version: int) -> tfs.GetModelMetadataResponse:
    response = tfs.GetModelMetadataResponse()
    _model_spec(response.model_spec, version)
    response.metadata["signature_def"].Pack(signature_def_map())
    return response


def signature_def_map() -> tfs.SignatureDefMap:
    """The signature table (:data:`mnist_contract.model.SIGNATURES`) as TF Serving sends it."""
    result = tfs.SignatureDefMap()
    for name, signature in SIGNATURES.items():
        definition = result.signature_def[name]
        definition.method_name = PREDICT_METHOD
        definition.inputs[INPUT_NAME].CopyFrom(
            _tensor_info(signature.batched_input_shape, f"{name}_{INPUT_NAME}:0")
        )
        definition.outputs[signature.output].CopyFrom(
            _tensor_info(
                signature.batched_output_shape, f"StatefulPartitionedCall:{signature.output}"
            )
        )
    return result


def _tensor_info(shape: tuple[int, ...], name: str) -> tf_pb.TensorInfo:
    tensor = tf_pb.TensorInfo(name=name, dtype=tf_pb.DT_FLOAT)
    tensor.tensor_shape.dim.extend(tf_pb.TensorShapeProto.Dim(size=d) for d in shape)
    return tensor


def status_response(statuses: list[VersionStatus]) -> tfs.GetModelStatusResponse:
    response = tfs.GetModelStatusResponse()
    for version in statuses:
        status = response.model_version_status.add(
            version=version.version, state=tfs.ModelVersionStatus.State.Value(version.state)
        )
        status.status.SetInParent()  # error_code OK, as TF Serving writes it
        if version.error:
            status.status.error_code = tf_error.UNKNOWN
            status.status.error_message = version.error
    return response


def _model_spec(spec: tfs.ModelSpec, version: int) -> None:
    spec.name = MODEL_NAME
    spec.version.value = version
