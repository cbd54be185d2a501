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
    MODEL_NAME,
)
from mnist_contract.open_inference import HEADER_LENGTH
from mnist_serving.adapters.rest.openapi_open_inference import v2_body, v2_schemas
from mnist_serving.adapters.rest.openapi_schemas import (
    ERROR,
    classify_body,
    options,
    predict_body,
    ref,
    schemas,
)

if TYPE_CHECKING:
    from mnist_serving.adapters.rest.routes import Route
    from mnist_serving.settings import Settings

FLOAT32_MAX = 3.4028234663852886e38
_DESCRIPTIONS = {
    400: "The request was refused; the message says what was wrong.",
    401: "Missing or wrong API key.",
    403: "The key lacks the scope the route needs (admin), or none is configured.",
    404: "No such model, version or label.",
    409: "Not in this state: no rollout in progress, or the gateway runs none.",
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
        "components": {"schemas": {**schemas(settings), **v2_schemas(settings)}},
    }
    if _keys_on(settings):
        doc["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
    return doc


def _which(route: Route) -> str:
    """The endpoint a row names, the V2 ones prefixed (``v2_infer``) so every name is one."""
    return f"v2_{route.endpoint}" if route.api == "open_inference" else route.endpoint


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
    if _which(route) == "classify":
        parameters += _classify_query()
        operation["requestBody"] = classify_body(settings)
    if _which(route) == "predict":
        operation["requestBody"] = predict_body(settings)
    if _which(route) == "v2_infer":
        operation["requestBody"] = v2_body(settings)
    if parameters:
        operation["parameters"] = parameters
    if _keys_on(settings) and (
        route.kind != "operational" or route.route_label not in settings.open_routes
    ):
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
        "action": {
            "type": "string",
            "enum": ["pause", "resume", "promote", "abort"],
            "description": "what to do with the rollout in progress",
        },
        "model_version": {
            "type": "string",
            "pattern": "^([1-9][0-9]{0,17}|[^/:0-9][^/:]*)$",
            "description": "a version number, or a label such as stable",
        },
    }
    return {"name": name, "in": "path", "required": True, "schema": schemas[name]}


def _classify_query() -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in options().items()
    ]


def _responses(route: Route, settings: Settings) -> dict[str, Any]:
    content: dict[str, Any] = {route.media_type: {"schema": _answer_schema(route)}}
    ok = {"description": "OK", "content": content}
    if _which(route) == "v2_infer":
        content["application/octet-stream"] = {
            "schema": {
                "type": "string",
                "description": f"binary outputs: the JSON answer ({HEADER_LENGTH} "
                "bytes), then each binary output's bytes",
            }
        }
    answers: dict[str, Any] = {"200": ok}
    codes = [500]
    if route.kind != "operational":
        codes += [400, 404, 503, 504]
        if _which(route) in ("predict", "classify", "v2_infer"):
            codes.append(413)
        if _which(route) == "classify":
            codes.append(415)
        if settings.rate_limit_per_second > 0:
            codes.append(429)
    elif _which(route) in ("readyz", "v2_ready"):
        codes.append(503)
    elif _which(route) == "drift_report":
        codes.append(404)
    elif _which(route) == "rollout_status":
        codes += [404, 409]
    if route.kind == "admin":
        codes += [403, 409]
    if _keys_on(settings) and (
        route.kind != "operational" or route.route_label not in settings.open_routes
    ):
        codes.append(401)
    for code in sorted(set(codes)):
        answer: dict[str, Any] = {
            "description": _DESCRIPTIONS[code],
            "content": {"application/json": {"schema": ERROR}},
        }
        if code in (429, 503):
            answer["headers"] = _RETRY_AFTER
        if _which(route) == "readyz" and code == 503:
            answer["content"] = {"application/json": {"schema": ref("NotReady")}}
        if _which(route) in ("v2_ready", "v2_model_ready") and code == 503:
            answer["description"] = "Not ready (loading, or draining)."
            answer["content"] = {"application/json": {"schema": _answer_schema(route)}}
        answers[str(code)] = answer
    return answers


def _answer_schema(route: Route) -> dict[str, Any]:
    if route.media_type != "application/json":
        return {"type": "string"}
    return ref(
        {
            "status": "ModelStatus",
            "metadata": "ModelMetadata",
            "predict": "PredictAnswer",
            "classify": "ClassifyAnswer",
            "healthz": "Alive",
            "readyz": "Ready",
            "stats": "Stats",
            "drift_report": "Drift",
            "rollout_status": "Rollout",
            "rollout_command": "Rollout",
            "openapi": "Document",
            "v2_live": "V2Live",
            "v2_ready": "V2Ready",
            "v2_server_metadata": "V2ServerMetadata",
            "v2_model_metadata": "V2ModelMetadata",
            "v2_model_ready": "V2ModelReady",
            "v2_infer": "V2InferAnswer",
        }[_which(route)]
    )


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
