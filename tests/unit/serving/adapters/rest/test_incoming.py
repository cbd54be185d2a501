"""The request as the front door hands it to an endpoint, and the answers the REST adapter
sends: read and written straight from and to ASGI messages."""

from __future__ import annotations

import pytest
from starlette.requests import ClientDisconnect

from mnist_serving.adapters.rest.incoming import PlainRequest, credential, peer
from mnist_serving.adapters.rest.responses import Response


def _scope(headers: list[tuple[bytes, bytes]], query: bytes = b"") -> dict:
    return {
        "type": "http",
        "method": "POST",
        "path": "/v1/digits:classify",
        "headers": headers,
        "query_string": query,
        "client": ("10.0.0.7", 41234),
    }


def _channel(*messages: dict):
    queue = list(messages)

    async def receive() -> dict:
        return queue.pop(0)

    return receive


async def _nothing() -> dict:
    raise AssertionError("the body was not to be read")


def test_headers_are_found_whatever_their_case_and_the_first_of_a_repeat_wins() -> None:
    request = PlainRequest(
        _scope([(b"x-api-key", b"first"), (b"content-type", b"image/png"), (b"x-api-key", b"2")]),
        _nothing,
        {},
    )
    assert request.headers["Content-Type"] == "image/png"
    assert request.headers.get("X-API-Key") == "first"
    assert "CONTENT-TYPE" in request.headers and "accept" not in request.headers
    assert credential(request) == "first"
    assert peer(request) == "10.0.0.7:41234"


def test_the_query_keeps_blank_values_and_decodes_escapes() -> None:
    request = PlainRequest(_scope([], b"top_k=3&explain=&name=a%20b"), _nothing, {})
    assert request.query_params == {"top_k": "3", "explain": "", "name": "a b"}
    assert PlainRequest(_scope([]), _nothing, {}).query_params == {}


async def test_the_body_streams_in_its_chunks_and_a_disconnect_is_the_callers() -> None:
    whole = _channel(
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"", "more_body": True},
        {"type": "http.request", "body": b"c", "more_body": False},
    )
    assert [chunk async for chunk in PlainRequest(_scope([]), whole, {}).stream()] == [b"ab", b"c"]
    gone = _channel(
        {"type": "http.request", "body": b"ab", "more_body": True}, {"type": "http.disconnect"}
    )
    with pytest.raises(ClientDisconnect):
        [chunk async for chunk in PlainRequest(_scope([]), gone, {}).stream()]


async def test_an_answer_is_its_status_headers_and_whole_body() -> None:
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    answer = Response(b'{"error": "x"}', 429, headers={"Retry-After": "1", "X-Request-Id": "r1"})
    await answer({"type": "http"}, _nothing, send)
    start, body = sent
    assert start["status"] == 429 and body == {"type": "http.response.body", "body": answer.body}
    assert dict(start["headers"]) == {
        b"content-length": b"14",
        b"content-type": b"application/json",
        b"retry-after": b"1",
        b"x-request-id": b"r1",
    }
