"""The OpenAPI document's schemas for the Open Inference Protocol's REST routes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mnist_contract.model import INPUT_NAME, MAX_TOP_K, SERVING_DEFAULT, SIGNATURES, Signature
from mnist_contract.open_inference import HEADER_LENGTH, IMAGE_SHAPES
from mnist_serving.adapters.rest.openapi_schemas import FLOAT32_MAX, object_schema, ref

if TYPE_CHECKING:
    from mnist_serving.settings import Settings


def v2_body(settings: Settings) -> dict[str, Any]:
    return {
        "required": True,
        "description": "One input, 'images': FP32 pixels (the model's range is [0, 1]) or UINT8 "
        f"pixels 0-255, shape [N,28,28,1], [N,784] or [N,28,28] with 1 ≤ N ≤ "
        f"{settings.max_images_per_request}; 'data' flat or nested, row-major, exactly as many "
        "elements as the shape holds. With the binary tensor extension the body is this JSON "
        f"followed by the tensors' bytes, and {HEADER_LENGTH} gives the JSON's length; an "
        "input then carries parameters.binary_data_size instead of data. Request parameters: "
        "binary_data_output (bool), timeout (µs), signature_name (serving_default or "
        "predict_images); others are ignored, shared memory and sequences are refused.",
        "content": {"application/json": {"schema": ref("V2InferRequest")}},
    }


def _v2_shape(tail: tuple[int, ...], most: int) -> dict[str, Any]:
    dims = [
        {"type": "integer", "minimum": 1, "maximum": most},
        *({"type": "integer", "const": d} for d in tail),
    ]
    return {"type": "array", "prefixItems": dims, "minItems": len(dims), "maxItems": len(dims)}


def _v2_input(datatype: str, element: dict[str, Any], most: int) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["name", "datatype", "shape", "data"],
        "properties": {
            "name": {"type": "string", "enum": [INPUT_NAME]},
            "datatype": {"type": "string", "enum": [datatype]},
            "shape": {"oneOf": [_v2_shape(tail, most) for tail in IMAGE_SHAPES]},
            # Nested arrays (rows of rows, like the shape) are read too; the schema shows the
            # flat form only, as a recursive one sends schema generators into deep recursion.
            "data": {
                "type": "array",
                "minItems": 1,
                "items": element,
                "description": "as many elements as the shape holds (the product of its "
                "dimensions), row-major: flat, or nested like the shape",
            },
            "parameters": {
                "type": "object",
                "properties": {"binary_data_size": False, "shared_memory_region": False},
            },
        },
    }


def _v2_request(signature: Signature, most: int) -> dict[str, Any]:
    """A V2 request for ``signature``: the default one, or the one parameters.signature_name
    names (whose output then has that signature's name)."""
    default = signature.name == SERVING_DEFAULT.name
    fp32 = {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}
    uint8 = {"type": "integer", "minimum": 0, "maximum": 255}
    parameters = {
        "type": "object",
        "properties": {
            "binary_data_output": {"type": "boolean"},
            "timeout": {"type": "integer", "minimum": 0},
            "signature_name": {
                "type": "string",
                "enum": [signature.name] + ([""] if default else []),
            },
            "shared_memory_region": False,
            "sequence_id": False,
        },
        **({} if default else {"required": ["signature_name"]}),
    }
    return {
        "type": "object",
        "required": ["inputs"] + ([] if default else ["parameters"]),
        "properties": {
            "id": {"type": "string"},
            "parameters": parameters,
            "inputs": {
                "type": "array",
                "minItems": 1,
                "maxItems": 1,
                "items": {
                    "oneOf": [_v2_input("FP32", fp32, most), _v2_input("UINT8", uint8, most)]
                },
            },
            "outputs": {
                "type": "array",
                "maxItems": 1,
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "enum": [signature.output]},
                        "parameters": {
                            "type": "object",
                            "properties": {
                                "binary_data": {"type": "boolean"},
                                "classification": {
                                    "type": "integer",
                                    "minimum": 0,
                                    "maximum": MAX_TOP_K,
                                },
                                "shared_memory_region": False,
                            },
                        },
                    },
                },
            },
        },
    }


def v2_schemas(settings: Settings) -> dict[str, Any]:
    most = settings.max_images_per_request
    tensor = object_schema(
        {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
        },
        optional={"data": {"type": "array"}, "parameters": {"type": "object"}},
    )
    return {
        "V2Live": object_schema({"live": {"type": "boolean"}}),
        "V2Ready": object_schema({"ready": {"type": "boolean"}}),
        "V2ServerMetadata": object_schema(
            {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "extensions": {"type": "array", "items": {"type": "string"}},
            }
        ),
        "V2ModelMetadata": object_schema(
            {
                "name": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "string"}},
                "platform": {"type": "string"},
                "inputs": {"type": "array", "items": tensor},
                "outputs": {"type": "array", "items": tensor},
            }
        ),
        "V2ModelReady": object_schema({"name": {"type": "string"}, "ready": {"type": "boolean"}}),
        "V2InferRequest": {"oneOf": [_v2_request(sig, most) for sig in SIGNATURES.values()]},
        "V2InferAnswer": object_schema(
            {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "outputs": {"type": "array", "items": tensor},
            },
            optional={"id": {"type": "string"}, "parameters": {"type": "object"}},
        ),
    }
