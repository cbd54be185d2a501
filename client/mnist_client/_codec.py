"""Inputs → items to send, answers → :class:`Prediction`: written once for every transport.

An *item* is either a 28×28 uint8 frame (sent raw, no preprocessing needed) or the bytes of an
image file (sent as is; the gateway preprocesses it, or :func:`frames_for_tfserving` does it
here when the server is plain TF Serving, which only takes tensors).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image

from mnist_client._errors import InvalidInput
from mnist_contract.model import top_k as rank
from mnist_contract.pixels import PixelError, model_input, to_uint8
from mnist_contract.preprocess import (
    ACCEPTED,
    ImageError,
    decode_image,
    image_format,
    to_mnist_frame,
)

# What ``classify`` accepts: one of these, or a list/tuple of them.
ImageInput = Union[np.ndarray, Image.Image, bytes, str, os.PathLike[str]]  # noqa: UP007


@dataclass(frozen=True)
class Candidate:
    digit: int
    probability: float


@dataclass(frozen=True)
class Prediction:
    """One image's answer."""

    digit: int
    confidence: float
    probabilities: tuple[float, ...]
    model_version: int | None  # None when the server does not say (TF Serving REST)
    top_k: tuple[Candidate, ...] = field(default=())


@dataclass(frozen=True)
class Item:
    frame: np.ndarray | None = None  # 28×28 uint8
    encoded: bytes | None = None  # an image file: PNG, JPEG, WebP, GIF, BMP or TIFF


def to_items(inputs: ImageInput | Sequence[ImageInput]) -> list[Item]:
    """Normalise any accepted input into items, refusing bad ones before anything is sent."""
    if isinstance(inputs, (list, tuple)):
        items: list[Item] = []
        for i, one in enumerate(inputs):
            try:
                items.extend(to_items(one))
            except InvalidInput as exc:
                raise InvalidInput(f"input {i}: {exc.message}") from None
        if not items:
            raise InvalidInput("no images given")
        return items
    if isinstance(inputs, np.ndarray):
        return [Item(frame=f) for f in _frames_from_array(inputs)]
    if isinstance(inputs, Image.Image):
        buf = io.BytesIO()
        inputs.save(buf, format="PNG")
        return [Item(encoded=buf.getvalue())]
    if isinstance(inputs, (bytes, bytearray, memoryview)):
        data = bytes(inputs)
        if image_format(data) is None:
            raise InvalidInput(f"bytes are not an image file in a supported format ({ACCEPTED})")
        return [Item(encoded=data)]
    if isinstance(inputs, (str, os.PathLike)):
        path = Path(inputs)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"{path}: cannot read ({exc.strerror or exc})") from None
        if image_format(data) is None:
            raise InvalidInput(f"{path}: not an image file in a supported format ({ACCEPTED})")
        return [Item(encoded=data)]
    raise InvalidInput(
        f"cannot classify a {type(inputs).__name__}; give numpy arrays, PIL images, "
        "image file bytes or file paths"
    )


def _frames_from_array(array: np.ndarray) -> list[np.ndarray]:
    shape = array.shape
    if shape == (28, 28):
        stack = array[np.newaxis]
    elif array.ndim == 3 and shape[1:] == (28, 28):
        stack = array
    elif array.ndim == 2 and shape[1] == 784:
        stack = array.reshape(-1, 28, 28)
    elif array.ndim == 4 and shape[1:] == (28, 28, 1):
        stack = array[..., 0]
    else:
        raise InvalidInput(f"array of shape {shape} is not 28×28, N×28×28, N×784 or N×28×28×1")
    if len(stack) == 0:
        raise InvalidInput("array holds no images")
    return list(_to_uint8(stack))


def _to_uint8(stack: np.ndarray) -> np.ndarray:
    try:
        return to_uint8(stack)
    except PixelError as exc:
        raise InvalidInput(str(exc)) from None


def frames_for_tfserving(items: Iterable[Item]) -> np.ndarray:
    """float32 [N,28,28,1] in [0,1], preprocessing encoded images here (TF Serving cannot)."""
    frames = []
    for i, item in enumerate(items):
        if item.frame is not None:
            frames.append(item.frame)
            continue
        assert item.encoded is not None
        try:
            frames.append(to_mnist_frame(decode_image(item.encoded)))
        except ImageError as exc:
            raise InvalidInput(f"image {i}: {exc}") from None
    return model_input(np.stack(frames))


def predictions_from_probabilities(
    probs: np.ndarray, version: int | None, top_k: int
) -> list[Prediction]:
    return [_prediction([float(p) for p in row], version, top_k) for row in probs]


def _prediction(probabilities: list[float], version: int | None, top_k: int) -> Prediction:
    digit = int(np.argmax(probabilities))
    return Prediction(
        digit,
        probabilities[digit],
        tuple(probabilities),
        version,
        tuple(Candidate(d, p) for d, p in rank(probabilities, top_k)),
    )


def predictions_from_digits_json(doc: Any, top_k: int) -> list[Prediction]:
    """The gateway's ``/v1/digits:classify`` answer."""
    version = int(doc["model_version"])
    return [
        _prediction([float(p) for p in item["probabilities"]], version, top_k)
        for item in doc["predictions"]
    ]
