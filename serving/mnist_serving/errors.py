"""Typed errors with a neutral code; each protocol adapter maps them once.

    ServingError                      500 / INTERNAL (anything not listed below)
    ├── InvalidInput                  400 / INVALID_ARGUMENT
    │   ├── PayloadTooLarge           413 / RESOURCE_EXHAUSTED
    │   └── UnsupportedMediaType      415 / INVALID_ARGUMENT
    ├── NotFound                      404 / NOT_FOUND
    ├── Unauthenticated               401 / UNAUTHENTICATED
    ├── RateLimited                   429 / RESOURCE_EXHAUSTED   (+ Retry-After)
    ├── Overloaded                    503 / UNAVAILABLE          (+ Retry-After; queue full)
    │   ├── TooManyInFlight           503 / UNAVAILABLE          (+ Retry-After; in-flight cap)
    │   └── QueueDelayed              503 / UNAVAILABLE          (+ Retry-After; waits too long)
    ├── BackendUnavailable            503 / UNAVAILABLE          (model not ready, backend down)
    └── DeadlineExceeded              504 / DEADLINE_EXCEEDED

The neutral code (``error.code``) is what metrics count, so REST and gRPC failures share labels.
"""

from __future__ import annotations


class ServingError(Exception):
    code = "INTERNAL"
    http_status = 500

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class InvalidInput(ServingError):
    code = "INVALID_ARGUMENT"
    http_status = 400


class PayloadTooLarge(InvalidInput):
    code = "RESOURCE_EXHAUSTED"
    http_status = 413


class UnsupportedMediaType(InvalidInput):
    http_status = 415


class NotFound(ServingError):
    code = "NOT_FOUND"
    http_status = 404


class Unauthenticated(ServingError):
    code = "UNAUTHENTICATED"
    http_status = 401


class RateLimited(ServingError):
    code = "RESOURCE_EXHAUSTED"
    http_status = 429


class Overloaded(ServingError):
    code = "UNAVAILABLE"
    http_status = 503


class TooManyInFlight(Overloaded):
    """Refused on arrival: the gateway already holds its cap of requests in progress."""


class QueueDelayed(Overloaded):
    """Refused on arrival: admitted requests have been waiting longer than the queue target
    (:mod:`mnist_serving.core.admission`)."""


class BackendUnavailable(ServingError):
    code = "UNAVAILABLE"
    http_status = 503


class DeadlineExceeded(ServingError):
    code = "DEADLINE_EXCEEDED"
    http_status = 504


class CallerGone(ServingError):
    """The caller closed the connection before its request was read: nobody is left to answer,
    so it is counted (as a cancelled call is) and not logged as a fault. 499 is nginx's
    status for it; no client ever sees it."""

    code = "CANCELLED"
    http_status = 499


class StartupError(RuntimeError):
    """The gateway cannot start serving (no version loads, a port is taken); not a request
    error: the command prints it and exits 1."""


def servable_not_found(what: str) -> NotFound:
    """TF Serving's words for a model, version or label that is not served: clients written
    for TF Serving match on them, so every protocol answers with this one text."""
    return NotFound(f"Servable not found for request: {what}")
