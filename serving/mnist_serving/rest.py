"""The REST adapter: parse HTTP, call the core, render JSON. No serving logic lives here.

Errors are mapped to HTTP in one place (:func:`_error_response`): a :class:`ServingError`
becomes its status with ``{"error": message}``; anything else is logged and answered
``500 {"error": "internal error"}`` with no detail.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from mnist_client.preprocess import MEDIA_TYPES
from mnist_serving import rest_codec as codec
from mnist_serving.core import DigitImage, InferenceCore, RequestTracker
from mnist_serving.errors import (
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    ServingError,
    Unauthenticated,
    UnsupportedMediaType,
)
from mnist_serving.metrics import tfserving_registry
from mnist_serving.model_store import VersionSpec, parse_version
from mnist_serving.openapi import CLASSIFY_BODY, DOCS_HTML, PREDICT_BODY
from mnist_serving.security import bearer_or_api_key
from mnist_serving.settings import MODEL_NAME
from mnist_serving.static import DEMO_HTML

log = logging.getLogger(__name__)
JSON = "application/json"
IMAGE_TYPES = MEDIA_TYPES
_ACCEPTED_TYPES = ", ".join(
    ("application/json", *IMAGE_TYPES, "multipart/form-data", "application/octet-stream")
)


def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(codec.dumps(doc), status_code=status, media_type=JSON, headers=headers)


def _credential(request: Request) -> str | None:
    headers = request.headers
    return bearer_or_api_key(headers.get("authorization"), headers.get("x-api-key"))


def _error_response(exc: Exception) -> Response:
    if isinstance(exc, ServingError):
        headers = {"Retry-After": str(max(1, round(exc.retry_after)))} if exc.retry_after else None
        if isinstance(exc, Unauthenticated):
            headers = {"WWW-Authenticate": "Bearer"}
        return _json({"error": exc.message}, exc.http_status, headers)
    log.error("unhandled error", exc_info=exc)
    return _json({"error": "internal error"}, 500)


def _spec(request: Request) -> VersionSpec:
    params = request.path_params
    if "version" in params:
        return VersionSpec(version=parse_version(params["version"]))
    if "label" in params:
        return VersionSpec(label=params["label"])
    return VersionSpec()


def _check_model(request: Request, spec: VersionSpec) -> None:
    if request.path_params["model"] != MODEL_NAME:
        name = request.path_params["model"]
        raise NotFound(
            f"Servable not found for request: {spec.describe().replace(MODEL_NAME, name, 1)}"
        )


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"request body of {int(declared):,} bytes exceeds the {limit:,}-byte limit"
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the {limit:,}-byte limit")
        chunks.append(chunk)
    return codec.maybe_gzip(b"".join(chunks), request.headers.get("content-encoding"), limit)


def create_app(core: InferenceCore, lifespan: Callable[[FastAPI], Any] | None = None) -> FastAPI:
    """The FastAPI app for ``core``; ``lifespan`` loads and unloads the model around serving."""
    app = FastAPI(
        title="MNIST digit service",
        version="1.0",
        description="TF Serving-compatible REST API and a friendly digits API.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    limit = core.settings.max_body_bytes
    depth = core.settings.max_json_depth

    async def tracked(
        request: Request, route: str, work: Callable[[RequestTracker], Awaitable[Response]]
    ) -> Response:
        try:
            async with core.request("rest", route, _credential(request)) as tracker:
                return await core.bounded(work(tracker))
        except Exception as exc:  # noqa: BLE001 - mapped once, below
            return _error_response(exc)

    # -- TF Serving API -----------------------------------------------------------------

    async def status(request: Request) -> Response:
        async def work(tracker: RequestTracker) -> Response:
            spec = _spec(request)
            _check_model(request, spec)
            return _json(codec.render_status(core.status(spec)))

        return await tracked(request, "status", work)

    async def metadata(request: Request) -> Response:
        async def work(tracker: RequestTracker) -> Response:
            spec = _spec(request)
            _check_model(request, spec)
            return _json(codec.render_metadata(core.metadata(spec)))

        return await tracked(request, "metadata", work)

    async def predict(request: Request) -> Response:
        async def work(tracker: RequestTracker) -> Response:
            spec = _spec(request)
            _check_model(request, spec)
            signature, inputs, rows = codec.parse_predict(
                codec.loads(await _read_body(request, limit), depth)
            )
            result = await core.predict(signature, inputs, spec, tracker)
            return _json(codec.render_predict(result, rows))

        return await tracked(request, "predict", work)

    base = "/v1/models/{model}"
    for prefix in (base, base + "/versions/{version}", base + "/labels/{label}"):
        app.add_api_route(
            prefix, status, methods=["GET"], tags=["TF Serving"], summary="Model status"
        )
        app.add_api_route(
            prefix + "/metadata",
            metadata,
            methods=["GET"],
            tags=["TF Serving"],
            summary="Signatures",
        )
        app.add_api_route(
            prefix + ":predict",
            predict,
            methods=["POST"],
            tags=["TF Serving"],
            summary="Predict (instances or inputs)",
            openapi_extra=PREDICT_BODY,
        )

    # -- the digits API -----------------------------------------------------------------

    @app.post("/v1/digits:classify", tags=["digits"], openapi_extra=CLASSIFY_BODY)
    async def classify(request: Request) -> Response:
        """Classify one or more images of digits (JSON, image files, multipart or raw bytes)."""

        async def work(tracker: RequestTracker) -> Response:
            images, options = await _digit_request(request, limit, depth)
            top_k, preprocessed, version = codec.parse_options(options)
            spec = VersionSpec.from_text(version)
            result = await core.classify(images, spec, tracker)
            return _json(codec.render_classify(result, top_k, preprocessed))

        return await tracked(request, "classify", work)

    # -- operations ---------------------------------------------------------------------

    open_routes = set(core.settings.open_routes)

    def refused(request: Request, route: str) -> Response | None:
        """With API keys on, operational routes not listed as open need a key too."""
        if route in open_routes or not core.access.enabled:
            return None
        try:
            core.access.authenticate(_credential(request))
        except ServingError as exc:
            return _error_response(exc)
        return None

    @app.get("/healthz", tags=["operations"])
    async def healthz(request: Request) -> Response:
        """Liveness: the process answers."""
        return refused(request, "healthz") or _json({"status": "alive"})

    @app.get("/readyz", tags=["operations"])
    async def readyz(request: Request) -> Response:
        """Readiness: the model is loaded and warmed up."""
        if denied := refused(request, "readyz"):
            return denied
        if not core.ready:
            reason = "model is loading" if not core.store.versions else "backend unavailable"
            return _json({"ready": False, "reason": reason}, 503)
        versions = [v.version for v in core.store.versions]
        return _json({"ready": True, "model": MODEL_NAME, "versions": versions})

    @app.get("/v1/stats", tags=["operations"])
    async def stats(request: Request) -> Response:
        """Requests/s and p50/p99 latency of predict and classify calls over the last minute."""
        return refused(request, "stats") or _json(core.recent.summary())

    @app.get("/", include_in_schema=False)
    async def demo_page(request: Request) -> Response:
        return refused(request, "demo") or Response(DEMO_HTML, media_type="text/html")

    @app.get("/metrics", tags=["operations"])
    async def metrics(request: Request) -> Response:
        """Prometheus metrics (text format)."""
        if denied := refused(request, "metrics"):
            return denied
        return Response(generate_latest(core.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    tfserving_view = tfserving_registry(core.metrics, MODEL_NAME)

    @app.get("/monitoring/prometheus/metrics", tags=["operations"])
    async def tfserving_metrics(request: Request) -> Response:
        """TF Serving's metric names at TF Serving's path (request count and latency of Predict),
        so a gateway standing in for TF Serving is scraped like one."""
        if denied := refused(request, "metrics"):
            return denied
        return Response(generate_latest(tfserving_view), media_type=CONTENT_TYPE_LATEST)

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> Response:
        return refused(request, "docs") or Response(DOCS_HTML, media_type="text/html")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        message = {404: "no such route", 405: "method not allowed"}.get(
            exc.status_code, str(exc.detail)
        )
        return _json({"error": f"{message}: see /docs for the API"}, exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> Response:
        return _json({"error": f"invalid request: {exc.errors()[0].get('msg', 'bad value')}"}, 400)

    return app


async def _digit_request(
    request: Request, limit: int, depth: int
) -> tuple[list[DigitImage], dict[str, Any]]:
    """Images and options from any of the digits API's content types."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    query = dict(request.query_params)
    if content_type == JSON or content_type.endswith("+json"):
        images, options = codec.parse_digits_json(
            codec.loads(await _read_body(request, limit), depth)
        )
        return images, {**query, **options}
    if content_type in IMAGE_TYPES:
        return [DigitImage(encoded=await _read_body(request, limit))], query
    if content_type == "application/octet-stream":
        return codec.parse_octet_stream(await _read_body(request, limit)), query
    if content_type == "multipart/form-data":
        body = await _read_body(request, limit)
        # Starlette's form parser reads a cached body; ours was size-checked (and gunzipped).
        request._body = body
        try:
            async with request.form(max_files=100_000, max_fields=100) as form:
                images = [
                    DigitImage(encoded=await value.read())
                    for _name, value in form.multi_items()
                    if not isinstance(value, str)
                ]
                fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        except Exception as exc:
            raise InvalidInput(f"malformed multipart body ({exc})") from exc
        if not images:
            raise InvalidInput("multipart body holds no file parts (send images as files)")
        return images, {**query, **fields}
    if not content_type:
        raise UnsupportedMediaType(f"missing Content-Type; send {_ACCEPTED_TYPES}")
    raise UnsupportedMediaType(f"unsupported Content-Type {content_type!r}; send {_ACCEPTED_TYPES}")
