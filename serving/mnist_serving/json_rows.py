"""A faster read of a large TF Serving ``{"instances": [...]}`` body of numbers.

orjson builds a Python object per number and per list (a 256-image MNIST body is ~200,000 floats
and as many one-element lists), and numpy then walks them again; together ~90% of such a
request's cost. Image bodies repeat few values (8-bit pixels, scaled), so this reads the
instances array as text: its shape from the brackets alone, each *distinct* number converted
once, the tensor by one table lookup. Everything else in the body is parsed by orjson as usual,
with the array replaced by a placeholder.

It is a shortcut, never a second parser with its own rules: it answers only when it is sure
the result is exactly what ``orjson.loads`` + ``np.array(..., float32)`` would give, and says
``None`` otherwise (many distinct values, small bodies, ragged or empty lists, anything that is
not strict JSON numbers, duplicate keys, escapes), leaving the body to the usual path and its
error messages.
"""

from __future__ import annotations

import re

import numpy as np

# Below this the usual path is as fast (1 image: ~7 KB).
MIN_BYTES = 32 * 1024
# The prefix whose distinct values decide whether the table pays off, and the largest share
# of distinct values it tolerates.
SAMPLE_BYTES = 16 * 1024
MAX_DISTINCT_SHARE = 0.25

_KEY = b'"instances"'
_WHITESPACE = b" \t\n\r"
# The bytes an array of JSON numbers can hold, and those of its elements.
_ARRAY_BYTES = b"[],0123456789.eE+- \t\n\r"
_NUMBER_BYTES = b"0123456789.eE+-"
# One element, with the whitespace JSON allows around it. Integers are kept short enough to be
# exact as float64 (orjson keeps longer ones as ints, which numpy converts differently).
_ELEMENT = re.compile(
    rb"[ \t\n\r]*(?:(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?[eE][+-]?[0-9]+|-?(?:0|[1-9][0-9]*)\.[0-9]+)"
    rb"|(-?(?:0|[1-9][0-9]{0,14})))[ \t\n\r]*"
)
# Every element byte as "n", whitespace deleted: "[[1.5, 2]]" → "[[nnn,n]]".
_AS_N = bytes.maketrans(_NUMBER_BYTES, b"n" * len(_NUMBER_BYTES))
_NOT_STRUCTURE = bytes(range(256)).translate(None, b"[],")  # every byte but the brackets, commas
_BRACKETS = b"[]"


def split_instances(body: bytes, max_depth: int) -> tuple[bytes, np.ndarray] | None:
    """(the body with its instances array replaced by ``0``, that array as float32), or None
    when the usual path should read the body. The caller parses the rest and must find
    ``instances == 0`` in it (so the array really was the top-level member)."""
    key = body.find(_KEY) if len(body) >= MIN_BYTES else -1
    if key < 0 or body.find(_KEY, key + len(_KEY)) >= 0:  # absent, or more than once
        return None
    start = _array_start(body, key + len(_KEY))
    if start is None or not _few_distinct(body[start : start + SAMPLE_BYTES]):
        return None
    # The array runs to the body's last "]" when it is the last member holding brackets;
    # otherwise that span holds other characters too, and the usual path reads the body.
    end = body.rfind(b"]") + 1
    array = body[start:end]
    if array.translate(None, _ARRAY_BYTES):
        return None
    # The array sits one level inside the document, so it may nest max_depth - 1 deep.
    shape = regular_shape(array.translate(None, _NOT_STRUCTURE), max_rank=max_depth - 1)
    if shape is None or not _elements_inside(array):
        return None
    values = _values(array.translate(None, _BRACKETS).split(b","), shape)
    if values is None:
        return None
    return body[:start] + b"0" + body[end:], values


def _array_start(body: bytes, at: int) -> int | None:
    """Where the array after ``"instances"`` starts: past whitespace, ``:``, whitespace."""
    at = _skip_whitespace(body, at)
    if body[at : at + 1] != b":":
        return None
    at = _skip_whitespace(body, at + 1)
    return at if body[at : at + 1] == b"[" else None


def _elements_inside(array: bytes) -> bool:
    """No element right after a "]" or right before a "[": with a regular structure, every
    element is then inside an innermost list (``[[1]2]`` would otherwise read as ``[[12]]``)."""
    marked = array.translate(_AS_N, _WHITESPACE)
    return b"]n" not in marked and b"n[" not in marked


def _skip_whitespace(body: bytes, at: int) -> int:
    while at < len(body) and body[at] in _WHITESPACE:
        at += 1
    return at


def _few_distinct(prefix: bytes) -> bool:
    pieces = prefix.translate(None, _BRACKETS).split(b",")[:-1]  # the last may be cut short
    return bool(pieces) and len(set(pieces)) <= MAX_DISTINCT_SHARE * len(pieces)


def regular_shape(structure: bytes, max_rank: int) -> tuple[int, ...] | None:
    """The shape of a regular nested array from its brackets and commas alone (the elements
    deleted: ``[[1,2],[3,4]]`` → ``[[,],[,]]`` → (2, 2)), or None if it is not one regular
    array or nests deeper than ``max_rank`` (checked first: the work grows with the square of
    the depth). An element-free list (``[]``) reads as one element here; its empty element is
    refused later, when the elements are read."""
    rank = len(structure) - len(structure.lstrip(b"["))
    if rank == 0 or rank > max_rank:
        return None
    close = structure.find(b"]", rank - 1)
    if close < 0:
        return None
    unit = structure[rank - 1 : close + 1]  # the first innermost list
    dims = [unit.count(b",") + 1]
    for level in range(rank - 2, -1, -1):
        count = _repeats(structure, level + 1, unit)
        if count == 0:
            return None
        dims.insert(0, count)
        unit = b"[" + b",".join([unit] * count) + b"]"
    return tuple(dims) if unit == structure else None


def _repeats(structure: bytes, at: int, unit: bytes) -> int:
    """How many copies of ``unit``, comma-separated and closed by ``]``, start at ``at``."""
    count = 0
    while structure.startswith(unit, at):
        count += 1
        at += len(unit)
        if structure[at : at + 1] == b"]":
            return count
        if structure[at : at + 1] != b",":
            return 0
        at += 1
    return 0


def _values(pieces: list[bytes], shape: tuple[int, ...]) -> np.ndarray | None:
    """The elements as float32 in ``shape``: each distinct piece checked and converted once."""
    if len(pieces) != int(np.prod(shape)):
        return None
    index: dict[bytes, int] = {}
    table: list[float] = []
    for piece in set(pieces):
        number = _ELEMENT.fullmatch(piece)
        if number is None:
            return None
        real, integer = number.groups()
        # An integer converts as orjson's int does (so "-0" is 0, not -0.0).
        index[piece] = len(table)
        table.append(float(real) if real is not None else float(int(integer)))
    exact = np.array(table, dtype=np.float64)
    if not np.isfinite(exact).all():
        return None  # orjson refuses numbers beyond float64; let it say so
    with np.errstate(over="ignore"):  # beyond float32: inf, refused later, as on the usual path
        narrowed = exact.astype(np.float32)
    picks = np.fromiter(map(index.__getitem__, pieces), dtype=np.intp, count=len(pieces))
    return narrowed[picks].reshape(shape)
