"""The REST app: every row of :data:`~mnist_serving.adapters.rest.routes.ROUTES` answered by
its API's endpoints, behind the :class:`~mnist_serving.adapters.rest.front_door.FrontDoor`.

API routes run inside :meth:`RequestAccounting.request` (keyed, counted, time-limited);
operational routes only pass :meth:`RequestAccounting.authorize`. Errors are mapped to HTTP in
one place (:mod:`~mnist_serving.adapters.rest.errors`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Route as StarletteRoute
from starlette.types import ASGIApp

from mnist_serving.adapters.rest import openapi
from mnist_serving.adapters.rest.digits_endpoints import DigitsEndpoints
from mnist_serving.adapters.rest.errors import error_response, http_status
from mnist_serving.adapters.rest.front_door import (
    DOOR_KEY,
    FrontDoor,
    Handler,
    InferencePath,
    path_pattern,
)
from mnist_serving.adapters.rest.incoming import RestRequest, credential, peer
from mnist_serving.adapters.rest.json_body import json_response
from mnist_serving.adapters.rest.open_inference_endpoints import V2Endpoints
from mnist_serving.adapters.rest.operations_endpoints import OperationsEndpoints
from mnist_serving.adapters.rest.responses import Response
from mnist_serving.adapters.rest.routes import ROUTES, Route
from mnist_serving.adapters.rest.tfserving_endpoints import TFServingEndpoints
from mnist_serving.core.accounting import INFERENCE_ROUTES, RequestAccounting, RequestTracker
from mnist_serving.core.inference import InferenceCore
from mnist_serving.deadlines import RequestLimit
from mnist_serving.errors import ServingError
from mnist_serving.observability.access_log import REQUEST_ID_HEADER, request_id
from mnist_serving.observability.metrics import Metrics
from mnist_serving.settings import Settings

ApiEndpoint = Callable[[RestRequest, RequestTracker], Awaitable[Response]]
OperationalEndpoint = Callable[[RestRequest], Awaitable[Response]]


def create_app(
    core: InferenceCore, accounting: RequestAccounting, metrics: Metrics, settings: Settings
) -> ASGIApp:
    """The REST app: every row of :data:`ROUTES`, and JSON for unknown routes, behind the
    front door that admits inference requests and answers them itself."""
    document = openapi.document(ROUTES, settings)
    endpoints: dict[str, Any] = {
        "tfserving": TFServingEndpoints(core, settings),
        "digits": DigitsEndpoints(core, settings),
        "v2": V2Endpoints(core, settings),
        "operations": OperationsEndpoints(core, accounting, metrics, document),
    }
    limit = RequestLimit(settings.request_timeout_ms / 1000)
    routes, inference = [], []
    for route in ROUTES:
        endpoint = getattr(endpoints[route.api], route.endpoint)
        if route.kind == "api":
            handler = _api_handler(accounting, route, endpoint, limit)
        else:
            handler = _operational_handler(accounting, route, endpoint)
        routes.append(StarletteRoute(route.path, handler, methods=[route.method]))
        if route.method == "POST" and route.name in INFERENCE_ROUTES:
            inference.append(InferencePath(path_pattern(route.path), route, handler))
    handlers: dict[Any, Any] = {HTTPException: _http_error}  # an Response is an ASGI response too
    app = Starlette(routes=routes, exception_handlers=handlers)
    return FrontDoor(app, accounting, inference)


def _api_handler(
    accounting: RequestAccounting, route: Route, endpoint: ApiEndpoint, limit: RequestLimit
) -> Handler:
    async def handle(request: RestRequest) -> Response:
        rid = request_id(request.headers.get(REQUEST_ID_HEADER))
        try:
            async with accounting.request(
                route.protocol,
                route.name,
                credential(request),
                rid=rid,
                peer=peer(request),
                carrier=request.headers,
                door=request.scope.get(DOOR_KEY),
                status_of=http_status,
            ) as tracker:
                response = await limit.bound(endpoint(request, tracker))
                tracker.http_status = response.status_code
        except Exception as exc:  # noqa: BLE001 - mapped once, in error_response
            response = error_response(exc)
        response.headers[REQUEST_ID_HEADER] = rid
        return response

    return handle


def _operational_handler(
    accounting: RequestAccounting, route: Route, endpoint: OperationalEndpoint
) -> Handler:
    async def handle(request: RestRequest) -> Response:
        started = time.perf_counter()
        rid = request_id(request.headers.get(REQUEST_ID_HEADER))
        try:
            accounting.authorize(route.name, credential(request))
            response = await endpoint(request)
            code = "OK" if response.status_code < 400 else "UNAVAILABLE"
        except Exception as exc:  # noqa: BLE001 - mapped once, in error_response
            response = error_response(exc)
            code = exc.code if isinstance(exc, ServingError) else "INTERNAL"
        response.headers[REQUEST_ID_HEADER] = rid
        elapsed = time.perf_counter() - started
        accounting.log_probe(
            route.protocol, route.name, code, response.status_code, elapsed, rid, peer(request)
        )
        return response

    return handle


async def _http_error(_request: RestRequest, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else None  # Allow on 405
    message = {404: "no such route", 405: "method not allowed"}.get(status, "bad request")
    return json_response({"error": f"{message}: see /docs for the API"}, status, headers)
