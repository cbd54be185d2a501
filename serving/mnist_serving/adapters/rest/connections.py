"""The REST server's connections, guarded against slow and idle clients: uvicorn's httptools
protocol with three bounds added, each counted in ``mnist_connections_closed_total``.

- **Headers in time**: a client must send a request's headers within ``header_timeout_seconds``
  of its connection (or of the first byte of a kept-alive connection's next request). Past it
  the connection is closed: with 408 when part of a request came, silently when nothing did
  (reasons ``header_timeout`` and ``idle``). nginx's ``client_header_timeout`` and Go's
  ``ReadHeaderTimeout`` do the same; without it, thousands of connections dripping a header
  line every few seconds hold their sockets for ever.
- **A cap on open connections** per worker (``max_connections``): one more is answered 503
  with Retry-After and closed at once (``over_capacity``), before it can take a file
  descriptor for long.
- A kept-alive connection between requests is closed by uvicorn's keep-alive timeout; a body
  that stalls is answered 408 by the request's time limit
  (:mod:`~mnist_serving.adapters.rest.app`).

With mutual TLS, the name on a verified client certificate is put in each request's scope for
the access log, and a client that must send one and did not is answered 403 and closed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mnist_serving.observability.metrics import Metrics

CLIENT_CERT = "mnist.client_cert"  # the scope key of a verified client certificate's name


class ConnectionGuard:
    """The bounds and their counters, shared by every connection of one worker's server."""

    def __init__(
        self,
        header_timeout_s: float,
        max_connections: int,
        metrics: Metrics,
        *,
        client_cert_required: bool = False,
    ) -> None:
        self.header_timeout_s = header_timeout_s
        self.max_connections = max_connections
        self.client_cert_required = client_cert_required
        self._open = metrics.connections_open.labels("rest")
        self._closed = {
            reason: metrics.connections_closed.labels("rest", reason)
            for reason in ("idle", "header_timeout", "over_capacity", "no_client_cert")
        }
        self.over_capacity = _response(
            503,
            f"the gateway holds its cap of {max_connections} open connections per worker "
            "(max_connections); try again",
            b"retry-after: 1\r\n",
        )
        self.header_timeout = _response(
            408,
            f"the request's headers did not arrive within {header_timeout_s:g} s "
            "(header_timeout_seconds)",
        )

    def opened(self) -> None:
        self._open.inc()

    def lost(self) -> None:
        self._open.dec()

    def closed(self, reason: str) -> None:
        self._closed[reason].inc()

    def protocol(self) -> type[HttpToolsProtocol]:
        """uvicorn's protocol class, bound to this guard (uvicorn makes one per connection)."""
        return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"guard": self})


def _response(status: int, message: str, extra: bytes = b"") -> bytes:
    body = orjson.dumps({"error": message})
    reason = {403: b"Forbidden", 408: b"Request Timeout", 503: b"Service Unavailable"}[status]
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"connection: close\r\n%s\r\n%s" % (status, reason, len(body), extra, body)
    )


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    guard: ConnectionGuard  # set on the subclass :meth:`ConnectionGuard.protocol` makes

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._in_headers = False  # part of a request's head has come, not all of it
        self._counted = False
        self._client_cert: str | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.guard.max_connections:
            self.transport = transport
            transport.write(self.guard.over_capacity)
            transport.close()
            self.guard.closed("over_capacity")
            return
        super().connection_made(transport)
        self._counted = True
        self.guard.opened()
        self._client_cert = _certificate_name(transport.get_extra_info("peercert"))
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        if self._counted:
            self._counted = False
            self.guard.lost()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # A request's head still incomplete after what came: its clock starts now (a head
        # that comes whole in one read, as nearly all do, never needs a timer).
        if self._in_headers and self._header_timer is None and not self.transport.is_closing():
            self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        if self._client_cert is not None:
            self.scope[CLIENT_CERT] = self._client_cert  # type: ignore[literal-required]

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._cancel_header_timer()
        if self._client_cert is None and self.guard.client_cert_required:
            self.app = _no_client_certificate  # this connection's only answer
            self.guard.closed("no_client_cert")
        super().on_headers_complete()

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.guard.header_timeout_s, self._too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self._in_headers:
            self.transport.write(self.guard.header_timeout)
        self.guard.closed("header_timeout" if self._in_headers else "idle")
        self.transport.close()


NO_CLIENT_CERT = orjson.dumps(
    {
        "error": "this gateway requires a client certificate signed by its client CA "
        "(mutual TLS); none was sent"
    }
)


async def _no_client_certificate(_scope: Scope, _receive: Receive, send: Send) -> None:
    """The answer to a request on a connection that sent no client certificate where one is
    required: 403, and the connection closed."""
    headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 403, "headers": headers})
    await send({"type": "http.response.body", "body": NO_CLIENT_CERT})


def _certificate_name(peercert: dict[str, Any] | None) -> str | None:
    """A verified client certificate's name (its subject's common name, else its first
    subject alternative name); None without one."""
    if not peercert:
        return None
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    alt_names = peercert.get("subjectAltName", ())
    return str(alt_names[0][1]) if alt_names else None
