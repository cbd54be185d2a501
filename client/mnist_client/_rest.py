"""REST: build the HTTP call for a chunk of items, send it (sync or async), parse the answer.

Against the gateway it uses ``POST /v1/digits:classify`` (raw frames as one
``application/octet-stream`` body; anything with image files as JSON with ``b64``); against
plain TF Serving, ``POST /v1/models/<model>:predict`` with ``instances``; against any Open
Inference Protocol server, ``POST /v2/models/<model>/infer`` with binary tensors.
"""

from __future__ import annotations

import base64
import json
import ssl
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from mnist_client import _v2
from mnist_client._codec import (
    Item,
    Prediction,
    frames_for_tfserving,
    predictions_from_digits_json,
    predictions_from_probabilities,
)
from mnist_client._config import ClientConfig
from mnist_client._errors import (
    ConnectionFailed,
    InvalidInput,
    MnistError,
    RequestTimeout,
    ServerError,
    from_http,
)
from mnist_contract.open_inference import HEADER_LENGTH


@dataclass(frozen=True)
class RestCall:
    path: str
    content: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class RestAnswer:
    status: int
    body: bytes
    retry_after: str | None
    header_length: str | None = None  # V2's Inference-Header-Content-Length


def build(items: list[Item], top_k: int, config: ClientConfig) -> RestCall:
    headers = {"Accept": "application/json"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    if config.api == "v2":
        content, v2_headers = _v2.rest_body(items)
        return RestCall(f"/v2/models/{config.model}/infer", content, {**headers, **v2_headers})
    if config.api == "tfserving":
        body = {"instances": frames_for_tfserving(items).tolist()}
        headers["Content-Type"] = "application/json"
        return RestCall(f"/v1/models/{config.model}:predict", json.dumps(body).encode(), headers)
    query = f"?top_k={top_k}" if top_k else ""
    if all(item.frame is not None for item in items):
        headers["Content-Type"] = "application/octet-stream"
        content = np.stack([item.frame for item in items]).astype(np.uint8).tobytes()  # type: ignore[misc]
        return RestCall("/v1/digits:classify" + query, content, headers)
    images = [
        {"b64": base64.b64encode(item.encoded).decode()}
        if item.encoded is not None
        else item.frame.tolist()  # type: ignore[union-attr]
        for item in items
    ]
    headers["Content-Type"] = "application/json"
    return RestCall("/v1/digits:classify" + query, json.dumps({"images": images}).encode(), headers)


def parse(answer: RestAnswer, top_k: int, config: ClientConfig) -> list[Prediction]:
    if answer.status != 200:
        raise from_http(answer.status, answer.body, answer.retry_after)
    if config.api == "v2":
        return _v2.parse_rest(answer.body, answer.header_length, top_k)
    try:
        doc = json.loads(answer.body)
        if config.api == "tfserving":
            return predictions_from_probabilities(np.asarray(doc["predictions"]), None, top_k)
        return predictions_from_digits_json(doc, top_k)
    except (ValueError, KeyError, TypeError) as exc:
        raise ServerError(f"unexpected answer from {config.url}: {exc}") from None


def _transport_error(exc: httpx.HTTPError, config: ClientConfig) -> MnistError:
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeout(f"no answer from {config.url} within {config.timeout} s")
    return ConnectionFailed(f"cannot reach {config.url}: {exc.__class__.__name__}: {exc}")


def _verify(config: ClientConfig) -> ssl.SSLContext | bool:
    """The system's trust store, or only ``ca_file``'s certificates when one is given; the
    client's own certificate presented when it has one."""
    if config.ca_file is None and config.cert_file is None:
        return True
    try:
        context = ssl.create_default_context(cafile=config.ca_file)
        if config.cert_file is not None:
            context.load_cert_chain(config.cert_file, config.key_file)
    except OSError as exc:  # ssl.SSLError included: not PEM, or a key that does not match
        files = ", ".join(f for f in (config.ca_file, config.cert_file, config.key_file) if f)
        raise InvalidInput(f"TLS files {files} cannot be used: {exc}") from None
    return context


def _options(config: ClientConfig, transport: Any) -> dict[str, Any]:
    """What both httpx clients are made with: base URL, timeout, pool, TLS trust."""
    return {
        "base_url": config.url,
        "timeout": config.timeout,
        "limits": httpx.Limits(max_keepalive_connections=32, max_connections=64),
        "transport": transport,
        "verify": _verify(config),
    }


def _ready_path(config: ClientConfig) -> str:
    """The gateway's readiness route, plain TF Serving's model status, or V2's model ready."""
    if config.api == "v2":
        return f"/v2/models/{config.model}/ready"
    return "/readyz" if config.api == "digits" else f"/v1/models/{config.model}"


def _answer(r: httpx.Response) -> RestAnswer:
    headers = r.headers
    return RestAnswer(
        r.status_code, r.content, headers.get("retry-after"), headers.get(HEADER_LENGTH)
    )


class RestTransport:
    def __init__(self, config: ClientConfig, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self._http = httpx.Client(**_options(config, transport))

    def send(self, call: RestCall) -> RestAnswer:
        try:
            r = self._http.post(call.path, content=call.content, headers=call.headers)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self.config) from None
        return _answer(r)

    def ready(self) -> bool:
        try:
            return self._http.get(_ready_path(self.config)).status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        self._http.close()


class AsyncRestTransport:
    def __init__(
        self, config: ClientConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self._http = httpx.AsyncClient(**_options(config, transport))

    async def send(self, call: RestCall) -> RestAnswer:
        try:
            r = await self._http.post(call.path, content=call.content, headers=call.headers)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self.config) from None
        return _answer(r)

    async def ready(self) -> bool:
        try:
            return (await self._http.get(_ready_path(self.config))).status_code == 200
        except httpx.HTTPError:
            return False

    async def close(self) -> None:
        await self._http.aclose()
