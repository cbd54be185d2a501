"""Multipart forms: every part is an image unless it is named as an option."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from mnist_serving.adapters.rest.multipart import parse_form
from mnist_serving.errors import InvalidInput


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (28, 28), 255).save(buffer, "PNG")
    return buffer.getvalue()


def _part(headers: bytes, data: bytes) -> bytes:
    return b"--b\r\nContent-Disposition: form-data; " + headers + b"\r\n\r\n" + data + b"\r\n"


def test_multipart_parts_are_images_unless_named_as_options() -> None:
    png = _png()
    body = (
        _part(b'name="file"', png)
        + _part(b'name="x"; filename="a.png"', png)
        + _part(b'name="top_k"', b"3")
        + b"--b--\r\n"
    )
    form = parse_form("multipart/form-data; boundary=b", body)
    assert form.files == [png, png] and form.options == {"top_k": "3"}
    with pytest.raises(InvalidInput, match="closing boundary"):
        parse_form("multipart/form-data; boundary=b", body[:40])
    with pytest.raises(InvalidInput, match="names no boundary"):
        parse_form("multipart/form-data", body)
    with pytest.raises(InvalidInput, match="no file parts"):
        parse_form("multipart/form-data; boundary=b", _part(b'name="top_k"', b"3") + b"--b--\r\n")
