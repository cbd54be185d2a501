"""The OpenAPI document's request and answer schemas, with the limits in force."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mnist_contract.model import (
    CLASSES,
    INPUT_NAME,
    MAX_TOP_K,
    SERVING_DEFAULT,
    SIGNATURES,
    Signature,
)
from mnist_contract.open_inference import HEADER_LENGTH, IMAGE_SHAPES
from mnist_contract.preprocess import ACCEPTED, MEDIA_TYPES
from mnist_serving.repositories.protocol import STATES

if TYPE_CHECKING:
    from mnist_serving.settings import Settings

FLOAT32_MAX = 3.4028234663852886e38
ERROR = {"$ref": "#/components/schemas/Error"}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def options() -> dict[str, Any]:
    """The digits API's options, as query parameters and multipart text parts take them."""
    return {
        "top_k": {"type": "integer", "minimum": 0, "maximum": MAX_TOP_K},
        # Text, as a query or form part carries it: true/false in any case, or 1/0.
        "return_preprocessed": {
            "type": "string",
            "pattern": "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|1|0)$",
        },
        "version": {"type": "string", "description": "a version number or a label"},
    }


def _tensor(signature: Signature, most: int) -> dict[str, Any]:
    """A batch for ``signature``: 1 to ``most`` examples of its input shape, float32 values."""
    schema: dict[str, Any] = {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}
    for size in reversed(signature.input_shape):
        schema = {"type": "array", "minItems": size, "maxItems": size, "items": schema}
    return {"type": "array", "minItems": 1, "maxItems": most, "items": schema}


def _predict_variant(signature: Signature, most: int) -> dict[str, Any]:
    tensor = _tensor(signature, most)
    # The default signature is also what an empty or absent signature_name means.
    default = signature.name == SERVING_DEFAULT.name
    names = [signature.name] + ([""] if default else [])
    return {
        "type": "object",
        "properties": {
            "signature_name": {"type": "string", "enum": names},
            "instances": {
                "anyOf": [
                    tensor,
                    {**tensor, "items": {
                        "type": "object", "required": [INPUT_NAME],
                        "properties": {INPUT_NAME: tensor["items"]},
                        "additionalProperties": False,
                    }},
                ]
            },
            "inputs": {
                "anyOf": [
                    tensor,
                    {"type": "object", "required": [INPUT_NAME],
                     "properties": {INPUT_NAME: tensor}, "additionalProperties": False},
                ]
            },
        },
        # TF Serving's rule: exactly one of the two formats.
        "oneOf": [{"required": ["instances"]}, {"required": ["inputs"]}],
        **({} if default else {"required": ["signature_name"]}),
    }  # fmt: skip


def predict_body(settings: Settings) -> dict[str, Any]:
    return {
        "required": True,
        "description": "Exactly one of instances (row format) or inputs (columnar); "
        f"1 to {settings.max_images_per_request} examples. Other members are ignored, as TF "
        "Serving ignores them.",
        "content": {"application/json": {"schema": ref("PredictRequest")}},
    }


def classify_body(settings: Settings) -> dict[str, Any]:
    most = settings.max_images_per_request
    raw = {"type": "string", "format": "digit-image",
           "description": f"an image file ({ACCEPTED}), any size up to "
           f"{settings.max_image_side} px a side"}  # fmt: skip
    frames = {"type": "string", "format": "digit-frames",
              "description": f"N×784 bytes: N 28×28 uint8 frames, 1 ≤ N ≤ {most}"}  # fmt: skip
    return {
        "required": True,
        "content": {
            "application/json": {"schema": ref("ClassifyRequest")},
            **{media: {"schema": raw} for media in MEDIA_TYPES},
            "application/octet-stream": {"schema": frames},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "description": "Image parts (any name but the options'), and the options "
                    "as text parts.",
                    "properties": {
                        "file": {"type": "array", "minItems": 1, "maxItems": most, "items": raw},
                        **options(),
                    },
                    "additionalProperties": False,
                },
            },
        },
    }  # fmt: skip


def _pixels(value: dict[str, Any], description: str) -> dict[str, Any]:
    row = {"type": "array", "minItems": 1, "items": value}
    return {"type": "array", "minItems": 1, "items": row, "description": description}


def _classify_request(settings: Settings) -> dict[str, Any]:
    rows_rule = "every row as long as the first"
    image = {
        "anyOf": [
            _pixels({"type": "integer", "minimum": 0, "maximum": 255},
                    f"a 2-D pixel array of whole numbers 0-255 ({rows_rule}); 28×28 is used as is"),
            _pixels({"type": "number", "minimum": 0, "maximum": 1},
                    f"a 2-D pixel array of numbers 0.0-1.0 ({rows_rule})"),
            {"type": "object", "required": ["b64"], "additionalProperties": False,
             "properties": {"b64": {"type": "string", "format": "digit-image-base64",
                                    "description": f"a base64 image file ({ACCEPTED})"}}},
        ]
    }  # fmt: skip
    return {
        "type": "object",
        "required": ["images"],
        "additionalProperties": False,
        "properties": {
            "images": {"type": "array", "minItems": 1,
                       "maxItems": settings.max_images_per_request, "items": image},
            "top_k": {"type": "integer", "minimum": 0, "maximum": MAX_TOP_K},
            "return_preprocessed": {"type": "boolean"},
            "version": {"type": ["integer", "string", "null"],
                        "description": "a version number or a label; null or absent: the default"},
        },
    }  # fmt: skip


def schemas(settings: Settings) -> dict[str, Any]:
    probabilities = {"type": "array", "minItems": CLASSES, "maxItems": CLASSES,
                     "items": {"type": "number", "minimum": 0, "maximum": 1}}  # fmt: skip
    # The model's answer as it is: null where inputs far outside [0, 1] drove it to NaN.
    outputs = {**probabilities, "items": {"type": ["number", "null"]}}
    rows = {"type": "array", "items": outputs}
    return {
        "Error": _object({"error": {"type": "string"}}),
        "ModelStatus": _object({"model_version_status": {"type": "array", "items": _object({
            "version": {"type": "string"},
            "state": {"type": "string", "enum": list(STATES)},
            "status": _object({"error_code": {"type": "string"},
                               "error_message": {"type": "string"}}),
        })}}),
        "ModelMetadata": _object({
            "model_spec": _object({"name": {"type": "string"}, "signature_name": {"type": "string"},
                                   "version": {"type": "string"}}),
            "metadata": _object({"signature_def": _object({"signature_def": {"type": "object"}})}),
        }),
        "PredictRequest": {
            "oneOf": [
                _predict_variant(s, settings.max_images_per_request) for s in SIGNATURES.values()
            ]
        },
        "PredictAnswer": {"oneOf": [_object({"predictions": rows}), _object({"outputs": rows})]},
        "ClassifyRequest": _classify_request(settings),
        "ClassifyAnswer": _object({
            "model_name": {"type": "string"},
            "model_version": {"type": "integer"},
            "predictions": {"type": "array", "items": _object(
                {"digit": {"type": "integer", "minimum": 0, "maximum": CLASSES - 1},
                 "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                 "probabilities": probabilities},
                optional={"top_k": {"type": "array", "items": _object(
                              {"digit": {"type": "integer"}, "probability": {"type": "number"}})},
                          "preprocessed": {"type": "array", "items": {"type": "array"}}},
            )},
        }),
        "Alive": _object({"status": {"type": "string", "enum": ["alive"]}}),
        "Ready": _object({"ready": {"type": "boolean", "enum": [True]}, "model": {"type": "string"},
                          "versions": {"type": "array", "items": {"type": "integer"}}}),
        "NotReady": _object({"ready": {"type": "boolean", "enum": [False]},
                             "reason": {"type": "string"}}),
        "Stats": _object({
            "window_seconds": {"type": "number"}, "requests": {"type": "integer"},
            "requests_per_second": {"type": "number"},
            "p50_ms": {"type": ["number", "null"]}, "p99_ms": {"type": ["number", "null"]},
        }),
        "Document": {"type": "object", "required": ["openapi", "paths"]},
        **_v2_schemas(settings),
    }  # fmt: skip


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
    dims = [{"type": "integer", "minimum": 1, "maximum": most},
            *({"type": "integer", "const": d} for d in tail)]  # fmt: skip
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
            "data": {"type": "array", "minItems": 1, "items": element,
                     "description": "as many elements as the shape holds (the product of its "
                     "dimensions), row-major: flat, or nested like the shape"},
            "parameters": {"type": "object", "properties": {
                "binary_data_size": False, "shared_memory_region": False}},
        },
    }  # fmt: skip


def _v2_request(signature: Signature, most: int) -> dict[str, Any]:
    """A V2 request for ``signature``: the default one, or the one parameters.signature_name
    names (whose output then has that signature's name)."""
    default = signature.name == SERVING_DEFAULT.name
    fp32 = {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}
    uint8 = {"type": "integer", "minimum": 0, "maximum": 255}
    parameters = {"type": "object", "properties": {
        "binary_data_output": {"type": "boolean"},
        "timeout": {"type": "integer", "minimum": 0},
        "signature_name": {"type": "string",
                           "enum": [signature.name] + ([""] if default else [])},
        "shared_memory_region": False, "sequence_id": False,
    }, **({} if default else {"required": ["signature_name"]})}  # fmt: skip
    return {
        "type": "object",
        "required": ["inputs"] + ([] if default else ["parameters"]),
        "properties": {
            "id": {"type": "string"},
            "parameters": parameters,
            "inputs": {"type": "array", "minItems": 1, "maxItems": 1, "items": {"oneOf": [
                _v2_input("FP32", fp32, most), _v2_input("UINT8", uint8, most)]}},
            "outputs": {"type": "array", "maxItems": 1, "items": {
                "type": "object", "required": ["name"],
                "properties": {"name": {"type": "string", "enum": [signature.output]},
                               "parameters": {"type": "object", "properties": {
                                   "binary_data": {"type": "boolean"},
                                   "classification": {"type": "integer", "minimum": 0,
                                                      "maximum": MAX_TOP_K},
                                   "shared_memory_region": False}}}}},
        },
    }  # fmt: skip


def _v2_schemas(settings: Settings) -> dict[str, Any]:
    most = settings.max_images_per_request
    tensor = _object({"name": {"type": "string"}, "datatype": {"type": "string"},
                      "shape": {"type": "array", "items": {"type": "integer"}}},
                     optional={"data": {"type": "array"}, "parameters": {"type": "object"}})  # fmt: skip
    return {
        "V2Live": _object({"live": {"type": "boolean"}}),
        "V2Ready": _object({"ready": {"type": "boolean"}}),
        "V2ServerMetadata": _object({"name": {"type": "string"}, "version": {"type": "string"},
                                     "extensions": {"type": "array", "items": {"type": "string"}}}),
        "V2ModelMetadata": _object({
            "name": {"type": "string"}, "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": tensor}, "outputs": {"type": "array", "items": tensor},
        }),
        "V2ModelReady": _object({"name": {"type": "string"}, "ready": {"type": "boolean"}}),
        "V2InferRequest": {"oneOf": [_v2_request(sig, most) for sig in SIGNATURES.values()]},
        "V2InferAnswer": _object({
            "model_name": {"type": "string"}, "model_version": {"type": "string"},
            "outputs": {"type": "array", "items": tensor},
        }, optional={"id": {"type": "string"}, "parameters": {"type": "object"}}),
    }  # fmt: skip


def _object(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }
