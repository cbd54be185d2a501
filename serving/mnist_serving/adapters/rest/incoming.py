"""What a REST request carries besides its route: its key, the version its path names, its
body (size-limited, inflated) and the caller's address; and :class:`PlainRequest`, the request
as the front door hands it to an inference endpoint.

Endpoints read a request through :class:`RestRequest`: Starlette's ``Request`` is one (the
routes Starlette dispatches), :class:`PlainRequest` another (the inference requests the front
door answers itself).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope

from mnist_serving.adapters.rest.connections import CLIENT_CERT
from mnist_serving.adapters.rest.json_body import decompress
from mnist_serving.core.access_control import bearer_or_api_key
from mnist_serving.core.inference import InferenceCore
from mnist_serving.errors import CallerGone, PayloadTooLarge
from mnist_serving.repositories.repository import VersionSpec, parse_version


class RestRequest(Protocol):
    """What the endpoints read of a request."""

    @property
    def scope(self) -> Scope: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def path_params(self) -> dict[str, Any]: ...

    @property
    def query_params(self) -> Mapping[str, str]: ...

    def stream(self) -> AsyncIterator[bytes]: ...


class Headers(dict[str, str]):
    """Header names in lower case, as ASGI gives them, looked up whatever their case."""

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name.lower() if isinstance(name, str) else name)


class PlainRequest:
    """An ASGI request read straight from its scope and channel: the headers once, as a dict
    (the first value of a repeated header, as Starlette's ``Headers.get`` answers), the query
    only when asked for."""

    __slots__ = ("_query", "_receive", "headers", "path_params", "scope")

    def __init__(self, scope: Scope, receive: Receive, path_params: dict[str, Any]) -> None:
        self.scope = scope
        self._receive = receive
        self.path_params = path_params
        self.headers = Headers(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in reversed(scope["headers"])
        )
        self._query: dict[str, str] | None = None

    @property
    def query_params(self) -> Mapping[str, str]:
        if self._query is None:
            text = self.scope.get("query_string", b"").decode("latin-1")
            self._query = dict(parse_qsl(text, keep_blank_values=True)) if text else {}
        return self._query

    async def stream(self) -> AsyncIterator[bytes]:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            body = message.get("body", b"")
            if body:
                yield body
            if not message.get("more_body", False):
                return


def credential(request: RestRequest) -> str | None:
    headers = request.headers
    return bearer_or_api_key(headers.get("authorization"), headers.get("x-api-key"))


def peer(request: RestRequest) -> str | None:
    client = request.scope.get("client")
    return f"{client[0]}:{client[1]}" if client else None


def client_cert(request: RestRequest) -> str | None:
    """The name on the caller's verified certificate (mutual TLS), if it sent one."""
    name: str | None = request.scope.get(CLIENT_CERT)
    return name


BODY_PENDING = "mnist.body_pending"  # in the scope while the body is being read


def body_pending(request: RestRequest) -> bool:
    """Whether the request's body was still arriving (its time limit passed meanwhile)."""
    return bool(request.scope.get(BODY_PENDING))


def version_spec(request: RestRequest) -> VersionSpec:
    """The version a TF Serving path names, after checking the path names our model."""
    params = request.path_params
    if "version" in params:
        spec = VersionSpec(version=parse_version(params["version"]))
    elif "label" in params:
        spec = VersionSpec(label=params["label"])
    else:
        spec = VersionSpec()
    InferenceCore.require_model(params["model"], spec)
    return spec


async def read_body(request: RestRequest, limit: int) -> bytes:
    """The body, inflated when sent compressed, refused past ``limit`` bytes before or after."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"request body of {int(declared):,} bytes exceeds the {limit:,}-byte limit"
        )
    chunks, size = [], 0
    request.scope[BODY_PENDING] = True
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"request body exceeds the {limit:,}-byte limit")
            chunks.append(chunk)
    except ClientDisconnect:
        raise CallerGone("the caller closed the connection before sending its whole body") from None
    request.scope[BODY_PENDING] = False
    return decompress(b"".join(chunks), request.headers.get("content-encoding"), limit)
