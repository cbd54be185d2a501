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
from mnist_contract.preprocess import ACCEPTED, MEDIA_TYPES
from mnist_serving.repositories.repository import STATES

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
                    {
                        **tensor,
                        "items": {
                            "type": "object",
                            "required": [INPUT_NAME],
                            "properties": {INPUT_NAME: tensor["items"]},
                            "additionalProperties": False,
                        },
                    },
                ]
            },
            "inputs": {
                "anyOf": [
                    tensor,
                    {
                        "type": "object",
                        "required": [INPUT_NAME],
                        "properties": {INPUT_NAME: tensor},
                        "additionalProperties": False,
                    },
                ]
            },
        },
        # TF Serving's rule: exactly one of the two formats.
        "oneOf": [{"required": ["instances"]}, {"required": ["inputs"]}],
        **({} if default else {"required": ["signature_name"]}),
    }


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
    raw = {
        "type": "string",
        "format": "digit-image",
        "description": f"an image file ({ACCEPTED}), any size up to "
        f"{settings.max_image_side} px a side",
    }
    frames = {
        "type": "string",
        "format": "digit-frames",
        "description": f"N×784 bytes: N 28×28 uint8 frames, 1 ≤ N ≤ {most}",
    }
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
    }


def _pixels(value: dict[str, Any], description: str) -> dict[str, Any]:
    row = {"type": "array", "minItems": 1, "items": value}
    return {"type": "array", "minItems": 1, "items": row, "description": description}


def _classify_request(settings: Settings) -> dict[str, Any]:
    rows_rule = "every row as long as the first"
    image = {
        "anyOf": [
            _pixels(
                {"type": "integer", "minimum": 0, "maximum": 255},
                f"a 2-D pixel array of whole numbers 0-255 ({rows_rule}); 28×28 is used as is",
            ),
            _pixels(
                {"type": "number", "minimum": 0, "maximum": 1},
                f"a 2-D pixel array of numbers 0.0-1.0 ({rows_rule})",
            ),
            {
                "type": "object",
                "required": ["b64"],
                "additionalProperties": False,
                "properties": {
                    "b64": {
                        "type": "string",
                        "format": "digit-image-base64",
                        "description": f"a base64 image file ({ACCEPTED})",
                    }
                },
            },
        ]
    }
    return {
        "type": "object",
        "required": ["images"],
        "additionalProperties": False,
        "properties": {
            "images": {
                "type": "array",
                "minItems": 1,
                "maxItems": settings.max_images_per_request,
                "items": image,
            },
            "top_k": {"type": "integer", "minimum": 0, "maximum": MAX_TOP_K},
            "return_preprocessed": {"type": "boolean"},
            "version": {
                "type": ["integer", "string", "null"],
                "description": "a version number or a label; null or absent: the default",
            },
        },
    }


def schemas(settings: Settings) -> dict[str, Any]:
    """Every schema the document refers to, by name."""
    return {
        "Error": object_schema({"error": {"type": "string"}}),
        **_tfserving_schemas(settings),
        **_digits_schemas(settings),
        **_operations_schemas(),
    }


_PROBABILITIES = {
    "type": "array",
    "minItems": CLASSES,
    "maxItems": CLASSES,
    "items": {"type": "number", "minimum": 0, "maximum": 1},
}


def _tfserving_schemas(settings: Settings) -> dict[str, Any]:
    # The model's answer as it is: null where inputs far outside [0, 1] drove it to NaN.
    outputs = {**_PROBABILITIES, "items": {"type": ["number", "null"]}}
    rows = {"type": "array", "items": outputs}
    return {
        "ModelStatus": object_schema(
            {
                "model_version_status": {
                    "type": "array",
                    "items": object_schema(
                        {
                            "version": {"type": "string"},
                            "state": {"type": "string", "enum": list(STATES)},
                            "status": object_schema(
                                {
                                    "error_code": {"type": "string"},
                                    "error_message": {"type": "string"},
                                }
                            ),
                        }
                    ),
                }
            }
        ),
        "ModelMetadata": object_schema(
            {
                "model_spec": object_schema(
                    {
                        "name": {"type": "string"},
                        "signature_name": {"type": "string"},
                        "version": {"type": "string"},
                    }
                ),
                "metadata": object_schema(
                    {"signature_def": object_schema({"signature_def": {"type": "object"}})}
                ),
            }
        ),
        "PredictRequest": {
            "oneOf": [
                _predict_variant(s, settings.max_images_per_request) for s in SIGNATURES.values()
            ]
        },
        "PredictAnswer": {
            "oneOf": [object_schema({"predictions": rows}), object_schema({"outputs": rows})]
        },
    }


def _digits_schemas(settings: Settings) -> dict[str, Any]:
    probabilities = _PROBABILITIES
    return {
        "ClassifyRequest": _classify_request(settings),
        "ClassifyAnswer": object_schema(
            {
                "model_name": {"type": "string"},
                "model_version": {"type": "integer"},
                "predictions": {
                    "type": "array",
                    "items": object_schema(
                        {
                            "digit": {"type": "integer", "minimum": 0, "maximum": CLASSES - 1},
                            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                            "probabilities": probabilities,
                        },
                        optional={
                            "top_k": {
                                "type": "array",
                                "items": object_schema(
                                    {
                                        "digit": {"type": "integer"},
                                        "probability": {"type": "number"},
                                    }
                                ),
                            },
                            "preprocessed": {"type": "array", "items": {"type": "array"}},
                        },
                    ),
                },
            }
        ),
    }


def _operations_schemas() -> dict[str, Any]:
    return {
        "Alive": object_schema({"status": {"type": "string", "enum": ["alive"]}}),
        "Ready": object_schema(
            {
                "ready": {"type": "boolean", "enum": [True]},
                "model": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "integer"}},
                "runtime": {"type": "string", "enum": ["litert", "savedmodel", "tfserving"]},
                "precision": {"type": "string", "enum": ["int8", "fp32"]},
            }
        ),
        "NotReady": object_schema(
            {"ready": {"type": "boolean", "enum": [False]}, "reason": {"type": "string"}}
        ),
        "Stats": object_schema(
            {
                "window_seconds": {"type": "number"},
                "requests": {"type": "integer"},
                "requests_per_second": {"type": "number"},
                "p50_ms": {"type": ["number", "null"]},
                "p99_ms": {"type": ["number", "null"]},
            }
        ),
        "Document": {"type": "object", "required": ["openapi", "paths"]},
        "Drift": _drift_schema(),
        "Rollout": _rollout_schema(),
    }


def _drift_schema() -> dict[str, Any]:
    number_or_null = {"type": ["number", "null"]}
    return object_schema(
        {
            "alarm": {"type": "boolean"},
            "overall": number_or_null,
            "threshold": {"type": "number"},
            "features": {"type": "object", "additionalProperties": {"type": "number"}},
            "estimated_accuracy": number_or_null,
            "window": {"type": "object"},
            "reference": {"type": ["object", "null"]},
            "version": {"type": ["integer", "null"]},
        },
        {"reason": {"type": "string"}},
    )


def _rollout_schema() -> dict[str, Any]:
    version = {"type": ["integer", "null"]}
    gate = object_schema(
        {
            "name": {"type": "string"},
            "figure": {"type": ["number", "null"]},
            "threshold": {"type": "number"},
            "passed": {"type": ["boolean", "null"]},
        }
    )
    return object_schema(
        {"mode": {"type": "string", "enum": ["auto"]}, "phase": {"type": "string"}},
        {
            "stable": version,
            "candidate": version,
            "step": {"type": "integer"},
            "since": {"type": "string"},
            "reason": {"type": "string"},
            "paused": {"type": "boolean"},
            "canary_weight": {"type": "number"},
            "shadow_weight": {"type": "number"},
            "gates": {"type": "array", "items": gate},
            "figures": {"type": "object"},
            "thresholds": {"type": "object"},
        },
    )


def object_schema(
    required: dict[str, Any], optional: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }
