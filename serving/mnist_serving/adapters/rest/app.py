"""The REST adapter: one route table over an endpoints object; parse HTTP, call the core, render.

Every route is a row of :data:`ROUTES`; the Starlette app and the OpenAPI document
(:mod:`mnist_serving.adapters.rest.openapi`) are both built from it, so the document lists exactly what is
served. Inference and model routes run inside :meth:`InferenceCore.request` (counted, keyed,
time-limited); operational routes only pass :meth:`InferenceCore.authorize`.

Errors are mapped to HTTP in one place (:func:`error_response`): a :class:`ServingError`
becomes its status with ``{"error": message}``; anything else is logged and answered
``500 {"error": "internal error"}`` with no detail.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.convertors import StringConvertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from mnist_contract.model import INPUT_NAME, MODEL_NAME
from mnist_contract.open_inference import HEADER_LENGTH, FramingError, frame, split
from mnist_contract.preprocess import MEDIA_TYPES
from mnist_serving import SERVER_VERSION
from mnist_serving.adapters import open_inference as v2
from mnist_serving.adapters.rest import codec, openapi
from mnist_serving.adapters.rest.multipart import parse_form
from mnist_serving.core.access_control import bearer_or_api_key
from mnist_serving.core.inference import INFERENCE_ROUTES, DigitImage, InferenceCore, RequestTracker
from mnist_serving.errors import (
    CallerGone,
    InvalidInput,
    Overloaded,
    PayloadTooLarge,
    ServingError,
    Unauthenticated,
    UnsupportedMediaType,
)
from mnist_serving.observability.access_log import REQUEST_ID_HEADER, request_id
from mnist_serving.repositories.protocol import VersionSpec, parse_version
from mnist_serving.static import DEMO_HTML

log = logging.getLogger(__name__)
JSON = "application/json"
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
ACCEPTED_TYPES = ", ".join((JSON, *MEDIA_TYPES, "multipart/form-data", "application/octet-stream"))


@dataclass(frozen=True)
class Route:
    """One REST route: where it is, which endpoint answers, and what the document says of it."""

    method: Literal["GET", "POST"]
    path: str
    endpoint: str  # the RestEndpoints method that answers
    name: str  # the route label in metrics; for operational routes, the open_routes name
    summary: str
    tag: str
    kind: Literal["api", "operational"] = "api"
    media_type: str = JSON  # of the success answer
    in_document: bool = True
    protocol: str = "rest"  # the protocol label in metrics

    @property
    def template(self) -> str:
        """The path as OpenAPI writes it: ``{model}``, without Starlette's ``:segment``."""
        return re.sub(r"{(\w+):\w+}", r"{\1}", self.path)


class _Segment(StringConvertor):
    """A path segment without ':': ``/v1/models/mnist:predict`` is the predict route, never
    the status route of a model named ``mnist:predict``."""

    regex = "[^/:]+"


register_url_convertor("segment", _Segment())


def _tfserving_routes() -> list[Route]:
    rows = []
    for prefix, which in (
        ("/v1/models/{model:segment}", "the default version"),
        ("/v1/models/{model:segment}/versions/{version:segment}", "one version"),
        ("/v1/models/{model:segment}/labels/{label:segment}", "a labelled version"),
    ):
        rows += [
            Route("GET", prefix, "status", "status", f"Model status ({which})", "TF Serving"),
            Route("GET", prefix + "/metadata", "metadata", "metadata",
                  f"Signatures ({which})", "TF Serving"),
            Route("POST", prefix + ":predict", "predict", "predict",
                  f"Predict, row (instances) or columnar (inputs) format ({which})", "TF Serving"),
        ]  # fmt: skip
    return rows


V2_TAG = "Open Inference Protocol"


def _v2_routes() -> list[Route]:
    """The Open Inference Protocol's routes; the ``/versions/{v}`` segment is optional."""
    rows = [
        Route(
            "GET",
            "/v2/health/live",
            "v2_live",
            "healthz",
            "V2 liveness: the process answers",
            V2_TAG,
            "operational",
        ),
        Route(
            "GET",
            "/v2/health/ready",
            "v2_ready",
            "readyz",
            "V2 readiness: the model is loaded and the gateway is not draining",
            V2_TAG,
            "operational",
        ),
        Route(
            "GET",
            "/v2",
            "v2_server_metadata",
            "server_metadata",
            "V2 server metadata: name, version, extensions",
            V2_TAG,
            protocol="v2_rest",
        ),
    ]
    for prefix, which in (
        ("/v2/models/{model:segment}", "the default version"),
        ("/v2/models/{model:segment}/versions/{model_version:segment}", "one version or label"),
    ):
        rows += [
            Route(
                "GET",
                prefix,
                "v2_model_metadata",
                "model_metadata",
                f"V2 model metadata: versions, inputs, outputs ({which})",
                V2_TAG,
                protocol="v2_rest",
            ),
            Route(
                "GET",
                prefix + "/ready",
                "v2_model_ready",
                "model_ready",
                f"V2 model readiness ({which})",
                V2_TAG,
                protocol="v2_rest",
            ),
            Route(
                "POST",
                prefix + "/infer",
                "v2_infer",
                "infer",
                f"V2 inference, JSON or binary tensors ({which})",
                V2_TAG,
                protocol="v2_rest",
            ),
        ]
    return rows


ROUTES: tuple[Route, ...] = (
    *_tfserving_routes(),
    *_v2_routes(),
    Route("POST", "/v1/digits:classify", "classify", "classify",
          "Classify images of digits (JSON, image files, multipart or raw frames)", "digits"),
    Route("GET", "/healthz", "healthz", "healthz", "Liveness: the process answers", "operations",
          "operational"),
    Route("GET", "/readyz", "readyz", "readyz",
          "Readiness: the model is loaded and warmed up, and the gateway is not draining",
          "operations", "operational"),
    Route("GET", "/v1/stats", "stats", "stats",
          "Requests/s and p50/p99 latency of inference requests over the last minute",
          "operations", "operational"),
    Route("GET", "/metrics", "metrics", "metrics", "Prometheus metrics (text format)",
          "operations", "operational", PROMETHEUS_TEXT),
    Route("GET", "/monitoring/prometheus/metrics", "tfserving_metrics", "metrics",
          "TF Serving's metric names at TF Serving's path", "operations", "operational",
          PROMETHEUS_TEXT),
    Route("GET", "/openapi.json", "openapi", "docs", "This document", "operations",
          "operational"),
    Route("GET", "/docs", "docs", "docs", "The API's page", "operations", "operational",
          "text/html", in_document=False),
    Route("GET", "/", "demo", "demo", "The demo page", "operations", "operational", "text/html",
          in_document=False),
)  # fmt: skip


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(codec.dumps(doc), status_code=status, media_type=JSON, headers=headers)


def error_response(exc: Exception) -> Response:
    if isinstance(exc, ServingError):
        headers = {"Retry-After": str(max(1, round(exc.retry_after)))} if exc.retry_after else None
        if isinstance(exc, Unauthenticated):
            headers = {"WWW-Authenticate": "Bearer"}
        return json_response({"error": exc.message}, exc.http_status, headers)
    log.error("unhandled error", exc_info=exc)
    return json_response({"error": "internal error"}, 500)


def credential(request: Request) -> str | None:
    headers = request.headers
    return bearer_or_api_key(headers.get("authorization"), headers.get("x-api-key"))


def version_spec(request: Request) -> VersionSpec:
    """The version a TF Serving path names, after checking the path names our model."""
    params = request.path_params
    if "version" in params:
        spec = VersionSpec(version=parse_version(params["version"]))
    elif "label" in params:
        spec = VersionSpec(label=params["label"])
    else:
        spec = VersionSpec()
    InferenceCore.require_model(params["model"], spec)
    return spec


async def read_body(request: Request, limit: int) -> bytes:
    """The body, inflated when sent compressed, refused past ``limit`` bytes before or after."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"request body of {int(declared):,} bytes exceeds the {limit:,}-byte limit"
        )
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"request body exceeds the {limit:,}-byte limit")
            chunks.append(chunk)
    except ClientDisconnect:
        raise CallerGone("the caller closed the connection before sending its whole body") from None
    return codec.decompress(b"".join(chunks), request.headers.get("content-encoding"), limit)


class RestEndpoints:
    """The answers. API endpoints take the request and its tracker; operational ones the request."""

    def __init__(self, core: InferenceCore, document: dict[str, Any]) -> None:
        self.core = core
        self.limit = core.settings.max_body_bytes
        self.depth = core.settings.max_json_depth
        self.document = codec.dumps(document)

    # -- TF Serving API -------------------------------------------------------------------

    async def status(self, request: Request, _tracker: RequestTracker) -> Response:
        return json_response(codec.render_status(self.core.status(version_spec(request))))

    async def metadata(self, request: Request, _tracker: RequestTracker) -> Response:
        return json_response(codec.render_metadata(self.core.metadata(version_spec(request))))

    async def predict(self, request: Request, tracker: RequestTracker) -> Response:
        spec = version_spec(request)
        body = codec.loads_predict(await read_body(request, self.limit), self.depth)
        signature, inputs, rows = codec.parse_predict(body)
        result = await self.core.predict(signature, inputs, spec, tracker)
        return json_response(codec.render_predict(result, rows))

    # -- the digits API -------------------------------------------------------------------

    async def classify(self, request: Request, tracker: RequestTracker) -> Response:
        images, options = await self._digit_request(request)
        top_k, preprocessed, version = codec.parse_options(options)
        result = await self.core.classify(images, VersionSpec.from_text(version), tracker)
        return json_response(codec.render_classify(result, top_k, preprocessed))

    async def _digit_request(self, request: Request) -> tuple[list[DigitImage], dict[str, Any]]:
        """Images and options from any of the digits API's content types."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        query = dict(request.query_params)
        if content_type == JSON or content_type.endswith("+json"):
            body = codec.loads(await read_body(request, self.limit), self.depth)
            images, options = codec.parse_digits_json(body)
            return images, {**query, **options}
        if content_type in MEDIA_TYPES:
            return [DigitImage(encoded=await read_body(request, self.limit))], query
        if content_type == "application/octet-stream":
            return codec.parse_octet_stream(await read_body(request, self.limit)), query
        if content_type == "multipart/form-data":
            body = await read_body(request, self.limit)
            form = parse_form(request.headers.get("content-type", ""), body)
            return [DigitImage(encoded=data) for data in form.files], {**query, **form.options}
        if not content_type:
            raise UnsupportedMediaType(f"missing Content-Type; send {ACCEPTED_TYPES}")
        raise UnsupportedMediaType(
            f"unsupported Content-Type {content_type!r}; send {ACCEPTED_TYPES}"
        )

    # -- the Open Inference Protocol (V2) --------------------------------------------------

    def _v2_spec(self, request: Request) -> VersionSpec:
        params = request.path_params
        return v2.version_spec(params["model"], params.get("model_version", ""))

    async def v2_server_metadata(self, _request: Request, _tracker: RequestTracker) -> Response:
        return json_response(v2.server_metadata(SERVER_VERSION))

    async def v2_model_metadata(self, request: Request, _tracker: RequestTracker) -> Response:
        return json_response(v2.model_metadata(self.core.served_versions(self._v2_spec(request))))

    async def v2_model_ready(self, request: Request, _tracker: RequestTracker) -> Response:
        ready = self.core.model_ready(self._v2_spec(request))
        return json_response({"name": MODEL_NAME, "ready": ready}, 200 if ready else 503)

    async def v2_infer(self, request: Request, tracker: RequestTracker) -> Response:
        spec = self._v2_spec(request)
        body = await read_body(request, self.limit)
        try:
            header, binary = split(body, request.headers.get(HEADER_LENGTH))
        except FramingError as exc:
            raise InvalidInput(str(exc)) from None
        if not header and binary:
            raise InvalidInput(
                f"{HEADER_LENGTH} is 0: the JSON header in front of the tensors is empty"
            )
        call = v2.parse_rest(codec.loads(header, self.depth), binary)
        work = self.core.predict(call.signature, {INPUT_NAME: call.images}, spec, tracker)
        result = await self.core.bounded(work, call.timeout_s)
        answer, tails = v2.render_rest(call, result)
        document = codec.dumps(answer)
        if not tails:
            return Response(document, media_type=JSON)
        return Response(
            frame(document, tails),
            media_type="application/octet-stream",
            headers={HEADER_LENGTH: str(len(document))},
        )

    async def v2_live(self, _request: Request) -> Response:
        return json_response({"live": True})

    async def v2_ready(self, _request: Request) -> Response:
        ready = self.core.ready
        return json_response({"ready": ready}, 200 if ready else 503)

    # -- operations -----------------------------------------------------------------------

    async def healthz(self, _request: Request) -> Response:
        return json_response({"status": "alive"})

    async def readyz(self, _request: Request) -> Response:
        report = self.core.readiness_report()
        return json_response(report, 200 if report["ready"] else 503)

    async def stats(self, _request: Request) -> Response:
        return json_response(self.core.stats())

    async def metrics(self, request: Request) -> Response:
        if "application/openmetrics-text" in request.headers.get("accept", ""):
            return Response(self.core.metrics_text(openmetrics=True), media_type=OPENMETRICS)
        return Response(self.core.metrics_text(), media_type=PROMETHEUS_TEXT)

    async def tfserving_metrics(self, _request: Request) -> Response:
        return Response(self.core.tfserving_metrics_text(), media_type=PROMETHEUS_TEXT)

    async def openapi(self, _request: Request) -> Response:
        return Response(self.document, media_type=JSON)

    async def docs(self, _request: Request) -> Response:
        return Response(openapi.DOCS_HTML, media_type="text/html")

    async def demo(self, _request: Request) -> Response:
        return Response(DEMO_HTML, media_type="text/html")


def _peer(request: Request) -> str | None:
    client = request.client
    return f"{client.host}:{client.port}" if client else None


def _api_handler(
    core: InferenceCore,
    route: Route,
    answer: Callable[[Request, RequestTracker], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        rid = request_id(request.headers.get(REQUEST_ID_HEADER))
        try:
            async with core.request(
                route.protocol, route.name, credential(request), rid=rid,
                peer=_peer(request), carrier=request.headers, door=request.scope.get(DOOR_KEY),
            ) as tracker:  # fmt: skip
                response = await core.bounded(answer(request, tracker))
                tracker.http_status = response.status_code
        except Exception as exc:  # noqa: BLE001 - mapped once, in error_response
            response = error_response(exc)
        response.headers[REQUEST_ID_HEADER] = rid
        return response

    return handle


def _operational_handler(
    core: InferenceCore, route: Route, answer: Callable[[Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        started = time.perf_counter()
        rid = request_id(request.headers.get(REQUEST_ID_HEADER))
        try:
            core.authorize(route.name, credential(request))
            response = await answer(request)
            code = "OK" if response.status_code < 400 else "UNAVAILABLE"
        except Exception as exc:  # noqa: BLE001 - mapped once, in error_response
            response = error_response(exc)
            code = exc.code if isinstance(exc, ServingError) else "INTERNAL"
        response.headers[REQUEST_ID_HEADER] = rid
        core.log_probe(route.protocol, route.name, code, response.status_code,
                       time.perf_counter() - started, rid, _peer(request))  # fmt: skip
        return response

    return handle


async def _http_error(_request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else None  # Allow on 405
    message = {404: "no such route", 405: "method not allowed"}.get(status, "bad request")
    return json_response({"error": f"{message}: see /docs for the API"}, status, headers)


def create_app(core: InferenceCore) -> ASGIApp:
    """The REST app for ``core``: every row of :data:`ROUTES`, and JSON for unknown routes,
    behind the :class:`Door` that admits inference requests and answers them itself."""
    endpoints = RestEndpoints(core, openapi.document(ROUTES, core.settings))
    routes, inference = [], []
    for route in ROUTES:
        answer = getattr(endpoints, route.endpoint)
        wrap = _api_handler if route.kind == "api" else _operational_handler
        handler = wrap(core, route, answer)
        routes.append(StarletteRoute(route.path, handler, methods=[route.method]))
        if route.method == "POST" and route.name in INFERENCE_ROUTES:
            inference.append(InferencePath(_path_pattern(route.path), route, handler))
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    return Door(app, core, inference)


DOOR_KEY = "mnist.door"  # in the ASGI scope: (arrived, admitted) perf_counter times


def _path_pattern(path: str) -> re.Pattern[str]:
    """A route's path as Starlette matches it: each ``{name:segment}`` one named segment."""
    return re.compile(re.sub(r"{(\w+):segment}", r"(?P<\1>[^/:]+)", path) + "$")


@dataclass(frozen=True)
class InferencePath:
    pattern: re.Pattern[str]
    route: Route
    handler: Callable[[Request], Awaitable[Response]]


class Door:
    """The first code a REST request meets. An inference request (a POST to one of
    ``inference``'s paths) takes its slot here (:class:`~mnist_serving.core.admission.Admission`),
    before its body is read, so waiting at the door while the gateway sheds costs no CPU and a
    refusal costs little: it is answered straight on the ASGI channel, without a request
    object. An admitted one goes straight to its handler: Starlette's route scan and
    middleware, which these requests never need (their handlers map every error themselves),
    are the largest share of a small request's cost. Everything else goes on to ``app``."""

    def __init__(self, app: ASGIApp, core: InferenceCore, inference: list[InferencePath]):
        self.app = app
        self._core = core
        self._inference = inference

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = None
        if scope["type"] == "http" and scope["method"] == "POST":
            found = self._find(scope["path"])
        if found is None:
            await self.app(scope, receive, send)
            return
        path, params = found
        admission = self._core.admission
        arrived = time.perf_counter()
        try:
            await admission.enter()
        except Overloaded as refusal:
            self._core.count_refusal(path.route.protocol, path.route.name, refusal, arrived)
            await _send_refusal(scope, send, refusal)
            return
        scope[DOOR_KEY] = (arrived, time.perf_counter())
        scope["path_params"] = params
        try:
            response = await path.handler(Request(scope, receive))
            await response(scope, receive, send)
        finally:
            admission.leave()

    def _find(self, path: str) -> tuple[InferencePath, dict[str, str]] | None:
        for candidate in self._inference:
            match = candidate.pattern.match(path)
            if match:
                return candidate, match.groupdict()
        return None


_REQUEST_ID_KEY = REQUEST_ID_HEADER.encode()  # ASGI header names are lower-case bytes


async def _send_refusal(scope: Scope, send: Send, refusal: Overloaded) -> None:
    """The 503 :func:`error_response` would give, written as raw ASGI messages."""
    sent_id = next((v for k, v in scope["headers"] if k == _REQUEST_ID_KEY), None)
    rid = request_id(sent_id.decode("latin-1") if sent_id is not None else None)
    body = codec.dumps({"error": refusal.message})
    headers = [
        (b"content-type", JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(max(1, round(refusal.retry_after or 1))).encode()),
        (_REQUEST_ID_KEY, rid.encode()),
    ]
    await send({"type": "http.response.start", "status": refusal.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
