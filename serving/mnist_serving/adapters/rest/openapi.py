"""The OpenAPI document, built from the REST route table and the settings it runs with.

It states what the server enforces: every route and path parameter, each request body with the
limits in force (images per request, pixel ranges, top-k bounds), every answer with its schema,
and the errors each route can give. The security scheme and the 401/429 answers appear only
when API keys and rate limits are on. Two rules JSON Schema cannot state are written in the
descriptions (and given formats of their own, ``digit-image`` and ``digit-frames``): a pixel
array's rows have one length, and image bytes must be a picture in an accepted format.

The ``/docs`` page renders the document with a few lines of script: no CDN, it works offline.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from mnist_contract.model import (
    CLASSES,
    INPUT_NAME,
    MAX_TOP_K,
    MODEL_NAME,
    SERVING_DEFAULT,
    SIGNATURES,
    Signature,
)
from mnist_contract.open_inference import HEADER_LENGTH, IMAGE_SHAPES
from mnist_contract.preprocess import ACCEPTED, MEDIA_TYPES
from mnist_serving.repositories.protocol import STATES

if TYPE_CHECKING:
    from mnist_serving.adapters.rest.app import Route
    from mnist_serving.settings import Settings

FLOAT32_MAX = 3.4028234663852886e38
ERROR = {"$ref": "#/components/schemas/Error"}
_DESCRIPTIONS = {
    400: "The request was refused; the message says what was wrong.",
    401: "Missing or wrong API key.",
    404: "No such model, version or label.",
    413: "The body (or an image in it) is larger than the gateway accepts.",
    415: "The Content-Type is not one the route reads.",
    429: "The key's rate limit is spent; retry after Retry-After seconds.",
    500: "The server failed; nothing about the failure is disclosed.",
    503: "Not ready, overloaded or shutting down; retry after Retry-After seconds.",
    504: "The answer took longer than the request's time limit.",
}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}


def document(routes: tuple[Route, ...], settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``routes`` as this gateway runs them."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if route.in_document:
            paths.setdefault(route.template, {})[route.method.lower()] = _operation(route, settings)
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "MNIST digit service",
            "version": "1.0",
            "description": "TF Serving-compatible REST API, the Open Inference Protocol (V2) "
            "and a friendly digits API.",
        },
        "paths": paths,
        "components": {"schemas": _schemas(settings)},
    }
    if _keys_on(settings):
        doc["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
    return doc


def _keys_on(settings: Settings) -> bool:
    return bool(settings.api_keys or settings.api_keys_file)


def _operation(route: Route, settings: Settings) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": _operation_id(route),
        "summary": route.summary,
        "tags": [route.tag],
        "responses": _responses(route, settings),
    }
    parameters = [_path_parameter(name) for name in re.findall(r"{(\w+)}", route.template)]
    if route.endpoint == "classify":
        parameters += _classify_query()
        operation["requestBody"] = _classify_body(settings)
    if route.endpoint == "predict":
        operation["requestBody"] = _predict_body(settings)
    if route.endpoint == "v2_infer":
        operation["requestBody"] = _v2_body(settings)
    if parameters:
        operation["parameters"] = parameters
    if _keys_on(settings) and (route.kind == "api" or route.name not in settings.open_routes):
        operation["security"] = [{"bearer": []}, {"apiKey": []}]
    return operation


def _operation_id(route: Route) -> str:
    words = re.sub(r"[{}]", "", route.template).replace(":", "/").split("/")
    return "_".join([route.method.lower(), *(w for w in words if w and w != "v1")])


def _path_parameter(name: str) -> dict[str, Any]:
    schemas = {
        "model": {"type": "string", "enum": [MODEL_NAME], "description": "the model's name"},
        # Positive int64, as TF Serving has them (19 digits may pass its bound; 18 cannot).
        "version": {"type": "string", "pattern": "^[1-9][0-9]{0,17}$"},
        "label": {"type": "string", "pattern": "^[^/:]+$", "description": "a label, e.g. stable"},
        "model_version": {
            "type": "string",
            "pattern": "^([1-9][0-9]{0,17}|[^/:0-9][^/:]*)$",
            "description": "a version number, or a label such as stable",
        },
    }
    return {"name": name, "in": "path", "required": True, "schema": schemas[name]}


def _options() -> dict[str, Any]:
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


def _classify_query() -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in _options().items()
    ]


def _responses(route: Route, settings: Settings) -> dict[str, Any]:
    content: dict[str, Any] = {route.media_type: {"schema": _answer_schema(route)}}
    ok = {"description": "OK", "content": content}
    if route.endpoint == "v2_infer":
        content["application/octet-stream"] = {"schema": {
            "type": "string", "description": f"binary outputs: the JSON answer ({HEADER_LENGTH} "
            "bytes), then each binary output's bytes"}}  # fmt: skip
    answers: dict[str, Any] = {"200": ok}
    codes = [500]
    if route.kind == "api":
        codes += [400, 404, 503, 504]
        if route.endpoint in ("predict", "classify", "v2_infer"):
            codes.append(413)
        if route.endpoint == "classify":
            codes.append(415)
        if settings.rate_limit_per_second > 0:
            codes.append(429)
    elif route.endpoint in ("readyz", "v2_ready"):
        codes.append(503)
    if _keys_on(settings) and (route.kind == "api" or route.name not in settings.open_routes):
        codes.append(401)
    for code in sorted(set(codes)):
        answer: dict[str, Any] = {
            "description": _DESCRIPTIONS[code],
            "content": {"application/json": {"schema": ERROR}},
        }
        if code in (429, 503):
            answer["headers"] = _RETRY_AFTER
        if route.endpoint == "readyz" and code == 503:
            answer["content"] = {"application/json": {"schema": _ref("NotReady")}}
        if route.endpoint in ("v2_ready", "v2_model_ready") and code == 503:
            answer["description"] = "Not ready (loading, or draining)."
            answer["content"] = {"application/json": {"schema": _answer_schema(route)}}
        answers[str(code)] = answer
    return answers


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer_schema(route: Route) -> dict[str, Any]:
    if route.media_type != "application/json":
        return {"type": "string"}
    return _ref(
        {
            "status": "ModelStatus",
            "metadata": "ModelMetadata",
            "predict": "PredictAnswer",
            "classify": "ClassifyAnswer",
            "healthz": "Alive",
            "readyz": "Ready",
            "stats": "Stats",
            "openapi": "Document",
            "v2_live": "V2Live",
            "v2_ready": "V2Ready",
            "v2_server_metadata": "V2ServerMetadata",
            "v2_model_metadata": "V2ModelMetadata",
            "v2_model_ready": "V2ModelReady",
            "v2_infer": "V2InferAnswer",
        }[route.endpoint]
    )


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


def _predict_body(settings: Settings) -> dict[str, Any]:
    return {
        "required": True,
        "description": "Exactly one of instances (row format) or inputs (columnar); "
        f"1 to {settings.max_images_per_request} examples. Other members are ignored, as TF "
        "Serving ignores them.",
        "content": {"application/json": {"schema": _ref("PredictRequest")}},
    }


def _classify_body(settings: Settings) -> dict[str, Any]:
    most = settings.max_images_per_request
    raw = {"type": "string", "format": "digit-image",
           "description": f"an image file ({ACCEPTED}), any size up to "
           f"{settings.max_image_side} px a side"}  # fmt: skip
    frames = {"type": "string", "format": "digit-frames",
              "description": f"N×784 bytes: N 28×28 uint8 frames, 1 ≤ N ≤ {most}"}  # fmt: skip
    return {
        "required": True,
        "content": {
            "application/json": {"schema": _ref("ClassifyRequest")},
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
                        **_options(),
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


def _schemas(settings: Settings) -> dict[str, Any]:
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


def _v2_body(settings: Settings) -> dict[str, Any]:
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
        "content": {"application/json": {"schema": _ref("V2InferRequest")}},
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


DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>MNIST digit service: API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#111}
code,pre{background:#f3f3f3;padding:.1em .3em}pre{padding:1em;overflow:auto}
h2{border-bottom:1px solid #ccc}.m{font-weight:bold;display:inline-block;width:4em}</style></head>
<body><h1>MNIST digit service</h1><p>The machine-readable schema is at
<a href="/openapi.json">/openapi.json</a>.</p><div id="api">Loading…</div>
<script>
fetch("/openapi.json").then(r => r.json()).then(spec => {
  const out = [];
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const esc = s => String(s ?? "").replace(/[&<>]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;"}[c]));
      out.push(`<h2><span class="m">${method.toUpperCase()}</span><code>${esc(path)}</code></h2>`);
      out.push(`<p>${esc(op.summary)} ${esc(op.description)}</p>`);
      const body = op.requestBody && op.requestBody.content;
      if (body) out.push(`<pre>${esc(JSON.stringify(body, null, 2))}</pre>`);
    }
  }
  document.getElementById("api").innerHTML = out.join("\\n");
});
</script></body></html>
"""
