"""``multipart/form-data`` bodies → images and options, from bytes already size-checked.

A part named ``top_k``, ``return_preprocessed`` or ``version`` is an option (its text); every
other part is an image file, whether or not the client gave it a filename (``curl -F
file=@a.png`` does, ``-F "file=<a.png"`` and many generated clients do not).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from mnist_serving.errors import InvalidInput

OPTION_NAMES = frozenset({"top_k", "return_preprocessed", "version"})


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)


@dataclass
class Form:
    files: list[bytes]
    options: dict[str, str]


def parse_form(content_type: str, body: bytes) -> Form:
    """The parts of a multipart body; :class:`InvalidInput` naming what is malformed."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidInput("malformed multipart body (the Content-Type names no boundary)")
    parts = _split(boundary, body)
    form = Form([], {})
    for part in parts:
        name = _field_name(part)
        if name in OPTION_NAMES:
            form.options[name] = part.data.decode("utf-8", "replace")
        else:
            form.files.append(bytes(part.data))
    if not form.files:
        raise InvalidInput("multipart body holds no file parts (send images as files)")
    return form


def _split(boundary: bytes, body: bytes) -> list[_Part]:
    parts: list[_Part] = []
    header: list[bytes] = [b"", b""]
    ended: list[bool] = []

    def begin() -> None:
        parts.append(_Part())

    def data(chunk: bytes, start: int, end: int) -> None:
        parts[-1].data += chunk[start:end]

    def field_name(chunk: bytes, start: int, end: int) -> None:
        header[0] += chunk[start:end]

    def field_value(chunk: bytes, start: int, end: int) -> None:
        header[1] += chunk[start:end]

    def header_end() -> None:
        parts[-1].headers[header[0].lower()] = header[1]
        header[0], header[1] = b"", b""

    callbacks = {
        "on_part_begin": begin,
        "on_part_data": data,
        "on_header_field": field_name,
        "on_header_value": field_value,
        "on_header_end": header_end,
        "on_end": lambda: ended.append(True),
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise InvalidInput(f"malformed multipart body ({exc})") from exc
    if not ended:
        raise InvalidInput("malformed multipart body (it ends before its closing boundary)")
    return parts


def _field_name(part: _Part) -> str:
    _, params = parse_options_header(part.headers.get(b"content-disposition", b""))
    return params.get(b"name", b"").decode("utf-8", "replace")
