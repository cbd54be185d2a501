"""The REST app: every row of :data:`~mnist_serving.adapters.rest.routes.ROUTES` answered by
its API's endpoints, behind the :class:`~mnist_serving.adapters.rest.front_door.FrontDoor`.

Every route's request runs inside :meth:`RequestAccounting.request` (keyed; counted and
time-limited unless operational; an inference request's slot taken there). Errors are mapped
to HTTP in one place (:mod:`~mnist_serving.adapters.rest.errors`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route as StarletteRoute
from starlette.types import ASGIApp

from mnist_serving.adapters.rest import openapi
from mnist_serving.adapters.rest.digits_endpoints import DigitsEndpoints
from mnist_serving.adapters.rest.errors import error_response, http_status
from mnist_serving.adapters.rest.front_door import FrontDoor, Handler
from mnist_serving.adapters.rest.incoming import (
    RestRequest,
    body_pending,
    client_cert,
    credential,
    peer,
)
from mnist_serving.adapters.rest.json_body import json_response
from mnist_serving.adapters.rest.open_inference_endpoints import OpenInferenceEndpoints
from mnist_serving.adapters.rest.operations_endpoints import OperationsEndpoints
from mnist_serving.adapters.rest.responses import Response
from mnist_serving.adapters.rest.routes import ROUTES, Route
from mnist_serving.adapters.rest.tfserving_endpoints import TFServingEndpoints
from mnist_serving.core.accounting import RequestAccounting, RequestRecord
from mnist_serving.core.drift import DriftMonitor
from mnist_serving.core.inference import InferenceCore
from mnist_serving.core.rollout_driver import RolloutDriver
from mnist_serving.deadlines import RequestLimit
from mnist_serving.errors import BodyTooSlow, DeadlineExceeded
from mnist_serving.observability.access_log import REQUEST_ID_HEADER, request_id
from mnist_serving.observability.metrics import Metrics
from mnist_serving.settings import Settings

# Every endpoint: the request, and its record to fill (the digits it answered, its version).
Endpoint = Callable[[RestRequest, RequestRecord], Awaitable[Response]]


def create_app(
    core: InferenceCore,
    accounting: RequestAccounting,
    metrics: Metrics,
    settings: Settings,
    drift: DriftMonitor,
    rollout: RolloutDriver | None = None,
) -> ASGIApp:
    """The REST app: every row of :data:`ROUTES`, and JSON for unknown routes, behind the
    front door that answers inference requests itself."""
    document = openapi.document(ROUTES, settings)
    endpoints: dict[str, Any] = {
        "tfserving": TFServingEndpoints(core, settings),
        "digits": DigitsEndpoints(core, settings),
        "open_inference": OpenInferenceEndpoints(core, settings),
        "operations": OperationsEndpoints(core, accounting, metrics, document, drift, rollout),
    }
    limit = RequestLimit(settings.request_timeout_ms / 1000)
    routes, inference = [], []
    for route in ROUTES:
        endpoint = getattr(endpoints[route.api], route.endpoint)
        served = StarletteRoute(
            route.path, _handler(accounting, route, endpoint, limit), methods=[route.method]
        )
        routes.append(served)
        if route.kind == "inference":
            inference.append(served)
    handlers: dict[Any, Any] = {HTTPException: _http_error}  # a Response is an ASGI app too
    app = Starlette(routes=routes, exception_handlers=handlers)
    door = FrontDoor(app, inference)
    return cors(door, settings) if settings.cors_allow_origins else door


# What a page on an allowed origin may send and read besides the CORS-safelisted headers.
CORS_REQUEST_HEADERS = ("Authorization", "X-API-Key", "Content-Type", "Content-Encoding")
CORS_EXPOSED_HEADERS = (REQUEST_ID_HEADER, "Retry-After")


def cors(app: ASGIApp, settings: Settings) -> ASGIApp:
    """``app`` behind CORS for the allowed origins only: preflights answered, the headers on
    those origins' requests and on no other's (a page elsewhere still cannot read answers)."""
    return CORSMiddleware(
        app,
        allow_origins=settings.cors_allow_origins,
        allow_methods=["GET", "POST"],
        allow_headers=[*CORS_REQUEST_HEADERS, REQUEST_ID_HEADER],
        allow_credentials=settings.cors_allow_credentials,
        expose_headers=list(CORS_EXPOSED_HEADERS),
        max_age=600,
    )


def _handler(
    accounting: RequestAccounting,
    route: Route,
    endpoint: Endpoint,
    limit: RequestLimit,
) -> Handler:
    """The route's handler: its request recorded, let in and timed by the accounting, its
    endpoint's answer or error sent with the request id."""
    operational = route.kind == "operational"  # not time-limited: probes answer at once

    async def handle(request: RestRequest) -> Response:
        rid = request_id(request.headers.get(REQUEST_ID_HEADER))
        record = RequestRecord(
            route.protocol, route.route_label, rid, peer(request), client_cert(request)
        )
        scope = accounting.request(
            record, credential(request), route.kind, carrier=request.headers, status_of=http_status
        )
        try:
            async with scope:
                work = endpoint(request, record)
                response = await (work if operational else _bounded(limit, work, request))
                record.http_status = response.status_code
                if response.status_code >= 500:  # answered, not raised: "not ready"
                    record.code = "UNAVAILABLE"
        except Exception as exc:  # noqa: BLE001 - mapped once, in error_response
            response = error_response(exc)
        response.headers[REQUEST_ID_HEADER] = rid
        return response

    return handle


async def _bounded(
    limit: RequestLimit, work: Awaitable[Response], request: RestRequest
) -> Response:
    """``work`` within the request's time limit; past it while the body was still arriving,
    the client's fault (408), not the gateway's (504)."""
    try:
        return await limit.bound(work)
    except DeadlineExceeded:
        if body_pending(request):
            raise BodyTooSlow(
                f"the request's body did not arrive within the gateway's limit of "
                f"{limit.limit_s:g} s (request_timeout_ms)"
            ) from None
        raise


async def _http_error(_request: RestRequest, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else None  # Allow on 405
    message = {404: "no such route", 405: "method not allowed"}.get(status, "bad request")
    return json_response({"error": f"{message}: see /docs for the API"}, status, headers)
