"""The digits API's images: what a request sends (a file, or pixels) → the 28×28 frames the
model is given, by MNIST's own preprocessing (:mod:`mnist_contract.preprocess`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mnist_contract.pixels import PixelError, to_uint8
from mnist_contract.preprocess import (
    ImageError,
    ImageLimits,
    decode_image,
    frames_already_mnist,
    to_mnist_frame,
)
from mnist_serving.errors import InvalidInput


@dataclass(frozen=True)
class DigitImage:
    """One image as the digits API received it, before preprocessing.

    Exactly one of ``encoded`` (image file bytes) and ``pixels`` (a 2-D array, uint8 0-255 or
    float 0-1 per the documented rule) is set.
    """

    encoded: bytes | None = None
    pixels: np.ndarray | None = None


@dataclass(frozen=True)
class Classification:
    digit: int
    confidence: float
    probabilities: np.ndarray
    frame: np.ndarray  # the 28×28 uint8 frame the model saw


@dataclass(frozen=True)
class ClassifyResult:
    results: list[Classification]
    version: int


def any_encoded(images: Sequence[DigitImage]) -> bool:
    """Whether any image is a file to decode (milliseconds each: work for a thread)."""
    return any(img.encoded is not None for img in images)


def to_frames(images: Sequence[DigitImage], limits: ImageLimits) -> np.ndarray:
    """The uint8 frames [N, 28, 28] the model is given, in the images' order;
    :class:`InvalidInput` naming the image that cannot be read."""
    frames: list[np.ndarray | None] = [None] * len(images)
    # The common binary case (octet-stream, uint8 28×28): one vectorised polarity check for
    # the whole batch instead of a median per image.
    quick = [i for i, img in enumerate(images) if _is_raw_frame(img.pixels)]
    if quick:
        stack = np.stack([images[i].pixels for i in quick])  # type: ignore[misc]
        ready = frames_already_mnist(stack)
        if len(quick) == len(images) and ready.all():
            return stack  # every image already an MNIST frame: nothing more to do
        for i, ok in zip(quick, ready.tolist(), strict=True):
            if ok:
                frames[i] = images[i].pixels
    for i, img in enumerate(images):
        if frames[i] is None:
            frames[i] = _preprocessed(i, img, limits)
    return np.stack(frames)  # type: ignore[arg-type] # every slot is filled by now


def _is_raw_frame(pixels: np.ndarray | None) -> bool:
    return pixels is not None and pixels.dtype == np.uint8 and pixels.shape == (28, 28)


def _preprocessed(index: int, image: DigitImage, limits: ImageLimits) -> np.ndarray:
    try:
        if image.encoded is not None:
            return to_mnist_frame(decode_image(image.encoded, limits))
        if image.pixels is not None:
            return to_mnist_frame(pixels_to_uint8(image.pixels))
        raise ImageError("no image data")
    except ImageError as exc:
        raise InvalidInput(f"image {index}: {exc}") from exc


def pixels_to_uint8(pixels: np.ndarray) -> np.ndarray:
    """A 2-D pixel array → uint8 by the pixel-range rule (:mod:`mnist_contract.pixels`)."""
    if pixels.ndim != 2:
        raise ImageError(
            f"pixel array must be 2-D (height × width), got shape {list(pixels.shape)}"
        )
    if pixels.shape[0] < 1 or pixels.shape[1] < 1:
        raise ImageError(f"pixel array is empty (shape {list(pixels.shape)})")
    try:
        return to_uint8(pixels)
    except PixelError as exc:
        raise ImageError(str(exc)) from None


def classifications(probs: np.ndarray, frames: np.ndarray, version: int) -> ClassifyResult:
    """Each image's digit, confidence, probabilities and frame."""
    digits = probs.argmax(axis=1)
    confidences = probs[np.arange(len(probs)), digits].tolist()
    results = [
        Classification(d, c, p, frame)
        for d, c, p, frame in zip(digits.tolist(), confidences, probs, frames, strict=True)
    ]
    return ClassifyResult(results, version)
