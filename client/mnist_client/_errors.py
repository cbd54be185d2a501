"""The client's exceptions, and the one place HTTP statuses and gRPC codes become them.

    MnistError                     anything this SDK raises
    ├── ConnectionFailed           the server could not be reached (refused, DNS, reset)
    ├── RequestTimeout             no answer in time (client timeout, 504, DEADLINE_EXCEEDED)
    ├── InvalidInput               the input was refused (400/413/415, INVALID_ARGUMENT),
    │                              or could not be encoded before sending
    ├── NotFound                   unknown model, version or label (404, NOT_FOUND)
    ├── Unauthenticated            missing or wrong API key (401, UNAUTHENTICATED)
    ├── Overloaded                 try again later (429/503, RESOURCE_EXHAUSTED/UNAVAILABLE);
    │                              ``retry_after`` holds the server's hint in seconds
    └── ServerError                the server failed (other 5xx, INTERNAL, UNKNOWN, ...)

Every error carries ``status`` (the HTTP status) or ``grpc_code`` (the gRPC code's name) when
the server answered, and the server's message::

    try:
        client.classify("digit.png")
    except Overloaded as exc:
        time.sleep(exc.retry_after or 1)
"""

from __future__ import annotations

import json
from typing import Any


class MnistError(Exception):
    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        grpc_code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.grpc_code = grpc_code
        self.retry_after = retry_after


class ConnectionFailed(MnistError):
    pass


class RequestTimeout(MnistError):
    pass


class InvalidInput(MnistError):
    pass


class NotFound(MnistError):
    pass


class Unauthenticated(MnistError):
    pass


class Overloaded(MnistError):
    pass


class ServerError(MnistError):
    pass


_BY_STATUS: dict[int, type[MnistError]] = {
    400: InvalidInput,
    401: Unauthenticated,
    403: Unauthenticated,
    404: NotFound,
    413: InvalidInput,
    415: InvalidInput,
    422: InvalidInput,
    429: Overloaded,
    503: Overloaded,
    504: RequestTimeout,
}
_BY_GRPC: dict[str, type[MnistError]] = {
    "INVALID_ARGUMENT": InvalidInput,
    "FAILED_PRECONDITION": InvalidInput,
    "OUT_OF_RANGE": InvalidInput,
    "NOT_FOUND": NotFound,
    "UNAUTHENTICATED": Unauthenticated,
    "PERMISSION_DENIED": Unauthenticated,
    "RESOURCE_EXHAUSTED": Overloaded,
    "UNAVAILABLE": Overloaded,
    "DEADLINE_EXCEEDED": RequestTimeout,
}


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date; the backoff policy decides instead


def from_http(status: int, body: bytes, retry_after: str | None) -> MnistError:
    """An HTTP error answer → the matching exception, with the server's message."""
    try:
        doc: Any = json.loads(body)
        message = str(doc["error"]) if isinstance(doc, dict) and "error" in doc else body.decode()
    except (ValueError, UnicodeDecodeError):
        message = body[:200].decode("utf-8", "replace")
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else InvalidInput)
    return kind(f"HTTP {status}: {message}", status=status, retry_after=_retry_after(retry_after))


def from_grpc(code: str, details: str, retry_after: str | None = None) -> MnistError:
    """A gRPC status (code name) → the matching exception, with the server's message."""
    kind = _BY_GRPC.get(code, ServerError)
    return kind(f"{code}: {details}", grpc_code=code, retry_after=_retry_after(retry_after))
