"""The REST adapter's responses: a status, headers and a whole body, sent as the two ASGI
messages they are. Every response the gateway gives is complete when made (no streaming, no
background work), so Starlette's own, with its header objects and background tasks, does more
than one needs; this one is an ASGI application as Starlette's routes expect one.
"""

from __future__ import annotations

from typing import Any

from starlette.types import Receive, Scope, Send

JSON = "application/json"


class Response:
    __slots__ = ("body", "headers", "status_code")

    def __init__(
        self,
        body: bytes,
        status_code: int = 200,
        media_type: str = JSON,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.body = body
        self.status_code = status_code
        # Lower-case names, as ASGI sends them.
        self.headers = {"content-type": media_type}
        if headers:
            self.headers.update((name.lower(), value) for name, value in headers.items())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw: list[tuple[bytes, bytes]] = [(b"content-length", b"%d" % len(self.body))]
        raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        start: dict[str, Any] = {"type": "http.response.start", "status": self.status_code}
        start["headers"] = raw
        await send(start)
        await send({"type": "http.response.body", "body": self.body})
