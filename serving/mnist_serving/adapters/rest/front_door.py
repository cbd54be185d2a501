"""The first code a REST request meets: inference requests go straight to their handler.

Starlette's route scan and middleware, which inference requests never need (their handlers
map every error themselves), are the largest share of a small request's cost, so a POST to an
inference route is matched here, by the compiled pattern of its Starlette route, and handed to
its handler with a :class:`~mnist_serving.adapters.rest.incoming.PlainRequest`. The handler
takes the request's admission slot before its body is read (:mod:`~mnist_serving.core.accounting`),
so waiting at the door while the gateway sheds costs no CPU. Everything else goes on to the
Starlette app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.routing import Route as StarletteRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from mnist_serving.adapters.rest.incoming import PlainRequest, RestRequest
from mnist_serving.adapters.rest.responses import Response

Handler = Callable[[RestRequest], Awaitable[Response]]


class FrontDoor:
    """ASGI in front of ``app``: answers the POSTs to the ``inference`` routes itself."""

    def __init__(self, app: ASGIApp, inference: list[StarletteRoute]) -> None:
        self.app = app
        self._inference = inference

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            for route in self._inference:
                found = route.path_regex.match(scope["path"])
                if found:  # every parameter is a plain segment: no conversion to apply
                    handler: Handler = route.endpoint
                    response = await handler(PlainRequest(scope, receive, found.groupdict()))
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
