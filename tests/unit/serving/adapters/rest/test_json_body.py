"""JSON bodies in and out: strict parsing, the depth limit, compressed bodies and their limits."""

from __future__ import annotations

import gzip
import zlib

import numpy as np
import pytest

from mnist_serving.adapters.rest.json_body import decompress, dumps, loads
from mnist_serving.errors import InvalidInput, PayloadTooLarge


def test_loads_names_what_is_wrong() -> None:
    assert loads(b'{"a": [1, 2]}') == {"a": [1, 2]}
    with pytest.raises(InvalidInput, match="body is empty"):
        loads(b"")
    with pytest.raises(InvalidInput, match="malformed JSON"):
        loads(b'{"a": ')
    with pytest.raises(InvalidInput, match="deeper than 6 levels"):
        loads(b"[" * 7 + b"]" * 7, max_depth=6)
    assert loads(b"[" * 6 + b"]" * 6, max_depth=6) == [[[[[[]]]]]]


def test_dumps_writes_strict_json_with_numpy_arrays() -> None:
    assert dumps({"p": np.array([0.5, np.nan], np.float32)}) == b'{"p":[0.5,null]}'


def test_compressed_bodies_are_inflated_within_the_limit() -> None:
    body = b'{"x": 1}' * 100
    assert decompress(gzip.compress(body), "gzip", 10_000) == body
    assert decompress(zlib.compress(body), "deflate", 10_000) == body
    assert decompress(body, "identity", 10) == body  # not inflated, so not this check's limit
    with pytest.raises(PayloadTooLarge, match="decompressed body exceeds the 100-byte limit"):
        decompress(gzip.compress(body), "gzip", 100)
    with pytest.raises(InvalidInput, match="truncated"):
        decompress(gzip.compress(body)[:-12], "gzip", 10_000)
    with pytest.raises(InvalidInput, match="unsupported Content-Encoding 'br'"):
        decompress(body, "br", 10_000)
