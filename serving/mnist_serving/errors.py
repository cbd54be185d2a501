"""Typed errors with a neutral code; each protocol adapter maps them once (REST:
:mod:`mnist_serving.adapters.rest.errors`; gRPC: the code is a ``grpc.StatusCode`` name).

    ServingError                      INTERNAL (anything not listed below)
    ├── InvalidInput                  INVALID_ARGUMENT
    │   ├── PayloadTooLarge           RESOURCE_EXHAUSTED
    │   └── UnsupportedMediaType      INVALID_ARGUMENT
    ├── NotFound                      NOT_FOUND
    ├── Conflict                      FAILED_PRECONDITION  (REST 409: not now, in this state)
    ├── Unauthenticated               UNAUTHENTICATED
    ├── PermissionDenied              PERMISSION_DENIED    (a key without the scope)
    ├── RateLimited                   RESOURCE_EXHAUSTED   (+ retry_after)
    ├── Overloaded                    UNAVAILABLE          (+ retry_after; queue full)
    │   ├── TooManyInFlight           UNAVAILABLE          (+ retry_after; in-flight cap)
    │   └── QueueDelayed              UNAVAILABLE          (+ retry_after; waits too long)
    ├── BackendUnavailable            UNAVAILABLE          (model not ready, backend down)
    ├── DeadlineExceeded              DEADLINE_EXCEEDED
    ├── BodyTooSlow                   DEADLINE_EXCEEDED    (REST 408: the client was slow)
    └── CallerGone                    CANCELLED            (the caller hung up mid-request)

The neutral code (``error.code``) is what metrics count, so REST and gRPC failures share labels;
a class that refuses a request without running it names its ``refusal`` reason (the ``reason``
label of ``mnist_requests_refused_total``).
"""

from __future__ import annotations


class ServingError(Exception):
    code = "INTERNAL"
    refusal: str | None = None  # the reason, when the request was refused without being run

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after

    @property
    def retry_after_seconds(self) -> int | None:
        """When to try again, in whole seconds as Retry-After says it (at least 1); None when
        trying again would not help."""
        return max(1, round(self.retry_after)) if self.retry_after else None


def refusal_reasons() -> tuple[str, ...]:
    """Every refusal reason, from the error classes that name one (a subclass after its base)."""
    reasons: list[str] = []
    classes: list[type[ServingError]] = [ServingError]
    while classes:
        kind = classes.pop(0)
        classes += kind.__subclasses__()
        if kind.refusal is not None and kind.refusal not in reasons:
            reasons.append(kind.refusal)
    return tuple(reasons)


class InvalidInput(ServingError):
    code = "INVALID_ARGUMENT"


class PayloadTooLarge(InvalidInput):
    code = "RESOURCE_EXHAUSTED"


class UnsupportedMediaType(InvalidInput):
    """The body's content type is not one the route reads."""


class NotFound(ServingError):
    code = "NOT_FOUND"


class Conflict(ServingError):
    """The request is well formed but cannot be done in the current state (an operator's
    command with no rollout in progress)."""

    code = "FAILED_PRECONDITION"


class Unauthenticated(ServingError):
    code = "UNAUTHENTICATED"
    refusal = "unauthenticated"


class PermissionDenied(ServingError):
    code = "PERMISSION_DENIED"
    refusal = "permission_denied"


class RateLimited(ServingError):
    code = "RESOURCE_EXHAUSTED"
    refusal = "rate_limited"


class Overloaded(ServingError):
    """Refused: the batching queue is full."""

    code = "UNAVAILABLE"
    refusal = "queue_full"


class TooManyInFlight(Overloaded):
    """Refused on arrival: the gateway already holds its cap of requests in progress."""

    refusal = "in_flight_limit"


class QueueDelayed(Overloaded):
    """Refused on arrival: admitted requests have been waiting longer than the queue target
    (:mod:`mnist_serving.core.admission`)."""

    refusal = "queue_delay"


class BackendUnavailable(ServingError):
    code = "UNAVAILABLE"


class DeadlineExceeded(ServingError):
    code = "DEADLINE_EXCEEDED"


class BodyTooSlow(ServingError):
    """The request's time limit passed while its body was still arriving: the client was
    slow, not the gateway (REST answers 408 Request Timeout and closes the connection)."""

    code = "DEADLINE_EXCEEDED"
    refusal = "slow_body"


class CallerGone(ServingError):
    """The caller closed the connection before its request was read: nobody is left to answer,
    so it is counted (as a cancelled call is) and not logged as a fault."""

    code = "CANCELLED"


class StartupError(RuntimeError):
    """The gateway cannot start serving (no version loads, a port is taken); not a request
    error: the command prints it and exits 1."""


def servable_not_found(what: str) -> NotFound:
    """TF Serving's words for a model, version or label that is not served: clients written
    for TF Serving match on them, so every protocol answers with this one text."""
    return NotFound(f"Servable not found for request: {what}")
