"""JSON bodies in and out of the REST adapter: strict parsing with a depth limit, gzip and
deflate bodies inflated with a size limit, answers rendered by orjson (numpy arrays included)."""

from __future__ import annotations

import zlib
from typing import Any

import orjson

from mnist_serving.adapters.rest.responses import JSON, Response
from mnist_serving.errors import InvalidInput, PayloadTooLarge

_JSON_OPTS = orjson.OPT_SERIALIZE_NUMPY


def dumps(doc: Any) -> bytes:
    """Strict JSON: NaN and infinity become null, never bare tokens."""
    return orjson.dumps(doc, option=_JSON_OPTS)


def loads(body: bytes, max_depth: int = 16) -> Any:
    if not body:
        raise InvalidInput("request body is empty; expected a JSON object")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc) or "recursion" in str(exc).lower():  # orjson's own cap
            raise InvalidInput(f"JSON nests deeper than {max_depth} levels") from None
        raise InvalidInput(f"malformed JSON: {exc}") from exc
    check_depth(doc, max_depth)
    return doc


def check_depth(doc: Any, max_depth: int) -> None:
    """Refuse nesting deeper than ``max_depth``, following every object member and the first
    element of each array. Arrays must be regular to become tensors, so a deeper element
    further along fails that check anyway; following only the first keeps this O(depth)
    instead of a walk over every pixel."""
    stack = [(doc, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children = list(node.values())
        elif isinstance(node, list) and node:
            children = [node[0]]
        else:
            continue
        if level >= max_depth and any(isinstance(c, dict | list) for c in children):
            raise InvalidInput(f"JSON nests deeper than {max_depth} levels")
        stack.extend((child, level + 1) for child in children)


# Content-Encoding → zlib's window bits: gzip's framing, or zlib's (what HTTP calls deflate).
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def inflate(body: bytes, limit: int, encoding: str = "gzip") -> bytes:
    """Decompress a gzip (or deflate) body, stopping at ``limit`` bytes (a bomb is refused
    early)."""
    inflater = zlib.decompressobj(_WBITS[encoding])
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInput(f"body is not valid {encoding} ({exc})") from exc
    if len(out) > limit:
        raise PayloadTooLarge(f"decompressed body exceeds the {limit:,}-byte limit")
    if not inflater.eof:
        raise InvalidInput(f"{encoding} body is truncated")
    return out


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body as sent (no or ``identity`` encoding) or inflated (gzip, deflate)."""
    if encoding is None or encoding.strip().lower() in ("", "identity"):
        return body
    name = encoding.strip().lower()
    if name in _WBITS:
        return inflate(body, limit, name)
    raise InvalidInput(f"unsupported Content-Encoding {encoding!r}; use gzip, deflate or none")


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(doc), status, JSON, headers)
