"""The first code a REST request meets: inference requests are admitted (or refused) here,
before their body is read, and routed straight to their handler.

A POST to an inference path takes its slot (:class:`~mnist_serving.core.admission.Admission`)
before its body is read, so waiting at the door while the gateway sheds costs no CPU and a
refusal costs little: it is answered straight on the ASGI channel, without a request object.
An admitted request goes straight to its handler: Starlette's route scan and middleware, which
these requests never need (their handlers map every error themselves), are the largest share
of a small request's cost. Everything else goes on to the Starlette app.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from mnist_serving.adapters.rest.errors import http_status
from mnist_serving.adapters.rest.incoming import PlainRequest, RestRequest
from mnist_serving.adapters.rest.json_body import dumps
from mnist_serving.adapters.rest.responses import JSON, Response
from mnist_serving.adapters.rest.routes import Route
from mnist_serving.core.accounting import RequestAccounting
from mnist_serving.errors import Overloaded
from mnist_serving.observability.access_log import REQUEST_ID_HEADER, request_id

DOOR_KEY = "mnist.door"  # in the ASGI scope: (arrived, admitted) perf_counter times
Handler = Callable[[RestRequest], Awaitable[Response]]


def path_pattern(path: str) -> re.Pattern[str]:
    """A route's path as Starlette matches it: each ``{name:segment}`` one named segment."""
    return re.compile(re.sub(r"{(\w+):segment}", r"(?P<\1>[^/:]+)", path) + "$")


@dataclass(frozen=True)
class InferencePath:
    pattern: re.Pattern[str]
    route: Route
    handler: Handler


class FrontDoor:
    """ASGI in front of ``app``: admits the POSTs to ``inference``'s paths and answers them."""

    def __init__(
        self, app: ASGIApp, accounting: RequestAccounting, inference: list[InferencePath]
    ) -> None:
        self.app = app
        self._accounting = accounting
        self._inference = inference

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = None
        if scope["type"] == "http" and scope["method"] == "POST":
            found = self._find(scope["path"])
        if found is None:
            await self.app(scope, receive, send)
            return
        path, params = found
        admission = self._accounting.admission
        arrived = time.perf_counter()
        try:
            await admission.enter()
        except Overloaded as refusal:
            self._accounting.count_refusal(path.route.protocol, path.route.name, refusal, arrived)
            await _send_refusal(scope, send, refusal)
            return
        scope[DOOR_KEY] = (arrived, time.perf_counter())
        try:
            response = await path.handler(PlainRequest(scope, receive, params))
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
    """The 503 :func:`~mnist_serving.adapters.rest.errors.error_response` would give, written
    as raw ASGI messages."""
    sent_id = next((v for k, v in scope["headers"] if k == _REQUEST_ID_KEY), None)
    rid = request_id(sent_id.decode("latin-1") if sent_id is not None else None)
    body = dumps({"error": refusal.message})
    headers = [
        (b"content-type", JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(max(1, round(refusal.retry_after or 1))).encode()),
        (_REQUEST_ID_KEY, rid.encode()),
    ]
    status = http_status(refusal)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
