"""The REST adapter's one error map: a typed error → its HTTP status and ``{"error": ...}``.

Anything that is not a :class:`~mnist_serving.errors.ServingError` is logged and answered
``500 {"error": "internal error"}`` with no detail.
"""

from __future__ import annotations

import asyncio
import logging

from mnist_serving.adapters.rest.json_body import json_response
from mnist_serving.adapters.rest.responses import Response
from mnist_serving.errors import (
    BackendUnavailable,
    BodyTooSlow,
    CallerGone,
    Conflict,
    DeadlineExceeded,
    InvalidInput,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    ServingError,
    Unauthenticated,
    UnsupportedMediaType,
)

log = logging.getLogger(__name__)
# The most specific class a raised error is an instance of decides (subclasses first).
HTTP_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (PayloadTooLarge, 413),
    (UnsupportedMediaType, 415),
    (InvalidInput, 400),
    (NotFound, 404),
    (Conflict, 409),
    (Unauthenticated, 401),
    (PermissionDenied, 403),
    (RateLimited, 429),
    (Overloaded, 503),
    (BackendUnavailable, 503),
    (DeadlineExceeded, 504),
    (BodyTooSlow, 408),
    # nginx's status for a caller that hung up; no client ever sees it, the access line does.
    (CallerGone, 499),
    (asyncio.CancelledError, 499),
)


def http_status(exc: BaseException) -> int:
    """The HTTP status ``exc`` is answered with (500 for anything unknown)."""
    for kind, status in HTTP_STATUS:
        if isinstance(exc, kind):
            return status
    return 500


def error_response(exc: Exception) -> Response:
    if isinstance(exc, ServingError):
        retry = exc.retry_after_seconds
        headers = {"Retry-After": str(retry)} if retry is not None else None
        if isinstance(exc, Unauthenticated):
            headers = {"WWW-Authenticate": "Bearer"}
        if isinstance(exc, BodyTooSlow):  # the rest of the body is not worth waiting for
            headers = {"Connection": "close"}
        return json_response({"error": exc.message}, http_status(exc), headers)
    log.error("unhandled error", exc_info=exc)
    return json_response({"error": "internal error"}, 500)
