"""What the gateway's own string formats mean, for schemathesis's generator.

The OpenAPI document names rules JSON Schema cannot state with formats of its own:
``digit-image`` (the bytes of a picture in an accepted format), ``digit-image-base64`` (the
same, base64) and ``digit-frames`` (N×784 bytes). Loaded by ``st run`` through
``SCHEMATHESIS_HOOKS``, these teach it to make such values, so schema-valid requests really are
valid and the ``positive_data_acceptance`` check holds the server to its document. One more
rule is stated in words: a V2 tensor holds as many elements as its shape says; :func:`map_case`
makes positive cases follow it.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import schemathesis
from hypothesis import strategies as st
from PIL import Image

from mnist_contract.preprocess import MEDIA_TYPES, ImageError, to_mnist_frame
from mnist_serving.core.digits import pixels_to_uint8

_PILLOW_NAMES = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/webp": "WEBP",
    "image/gif": "GIF",
    "image/bmp": "BMP",
    "image/tiff": "TIFF",
}


def _picture(side: int, ink: int, seed: int, fmt: str) -> bytes:
    """A dark stroke on light paper, like a photo of a written digit."""
    rng = np.random.default_rng(seed)
    canvas = np.full((side, side), 235, np.uint8)
    top, left = rng.integers(0, side // 3, 2)
    canvas[top : top + side // 2, left : left + max(2, side // 8)] = ink
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, fmt)
    return buffer.getvalue()


def _pictures(fmt: str) -> st.SearchStrategy[bytes]:
    return st.builds(
        _picture, st.integers(28, 96), st.integers(0, 60), st.integers(0, 2**16), st.just(fmt)
    )


_any_picture = st.sampled_from(list(_PILLOW_NAMES.values())).flatmap(_pictures)
_frames = st.integers(1, 8).flatmap(lambda n: st.binary(min_size=784 * n, max_size=784 * n))

schemathesis.openapi.format("digit-image", _any_picture)
schemathesis.openapi.format(
    "digit-image-base64", _any_picture.map(lambda data: base64.b64encode(data).decode())
)
schemathesis.openapi.format("digit-frames", _frames)
for media in MEDIA_TYPES:
    schemathesis.openapi.media_type(media, _pictures(_PILLOW_NAMES[media]))
schemathesis.openapi.media_type("application/octet-stream", _frames)


def _readable(image: object) -> bool:
    """A JSON pixel array the digits API can read: rows of one length (the rule the document
    states in words) holding some ink (a blank page has no digit to classify)."""
    if not isinstance(image, list) or not all(isinstance(row, list) for row in image):
        return True  # not a pixel array: the schema alone decides
    if len({len(row) for row in image}) > 1:
        return False
    try:
        to_mnist_frame(pixels_to_uint8(np.array(image)))
    except (ImageError, ValueError):
        return False
    return True


@schemathesis.hook
def filter_case(context: schemathesis.HookContext, case: schemathesis.Case) -> bool:
    """Keep positive classify cases only when their pixel arrays follow the two rules above
    (negative cases are meant to break rules, so they all go)."""
    if case.operation.path != "/v1/digits:classify" or case.meta is None:
        return True
    if not case.meta.generation.mode.is_positive:
        return True
    body = case.body
    if not isinstance(body, dict) or not isinstance(body.get("images"), list):
        return True
    return all(_readable(image) for image in body["images"])


def _first_pixel(data: object, datatype: object) -> float:
    """The first generated value when it is a valid element of ``datatype``, else 0."""
    while isinstance(data, list) and data:
        data = data[0]
    if not isinstance(data, int | float) or isinstance(data, bool):
        return 0
    if datatype == "UINT8":
        return data if data == int(data) and 0 <= data <= 255 else 0
    return data if abs(data) <= 3.4e38 else 0


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: schemathesis.Case) -> schemathesis.Case:
    """V2 inference cases: a ``timeout`` parameter is dropped (one shorter than the model call
    is meant to end in 504, which the checks count as a server error). Positive cases get as
    many data elements as their shape holds (the rule the document states in words), flat,
    repeating the first generated value, with at most 16 images so the body stays under the
    body limit (past it the answer is the documented 413)."""
    if not case.operation.path.endswith("/infer") or not isinstance(case.body, dict):
        return case
    parameters = case.body.get("parameters")
    if isinstance(parameters, dict):
        parameters.pop("timeout", None)
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return case
    for tensor in case.body.get("inputs", []):
        shape = tensor.get("shape") if isinstance(tensor, dict) else None
        if isinstance(shape, list) and shape:
            shape[0] = min(int(shape[0]), 16)
            value = _first_pixel(tensor.get("data"), tensor.get("datatype"))
            tensor["data"] = [value] * int(np.prod(shape))
    return case
