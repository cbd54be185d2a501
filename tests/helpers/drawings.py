"""Images of a real MNIST digit drawn the way people's files hold them: every format, mode,
orientation and transparency the digits API reads (:data:`CASES`), for the preprocessing's unit
tests and the gateway's end-to-end ones."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image

# A test digit the fixture model reads correctly from a plain PNG (checked end to end).
DIGIT_INDEX = 0


SIDE = 112


def ink_of(digits) -> np.ndarray:
    """The digit's ink in [0, 1], enlarged 4× with a margin, as a person's drawing."""
    frame = digits["x_test"][DIGIT_INDEX]
    big = Image.fromarray(frame).resize((SIDE, SIDE), Image.Resampling.BICUBIC)
    ink = np.zeros((SIDE + 48, SIDE + 48), np.float32)
    ink[24:-24, 24:-24] = np.asarray(big, np.float32) / 255.0
    return ink


def paper(ink: np.ndarray) -> np.ndarray:
    """Dark ink on light paper, 8-bit."""
    return np.round(250 - 230 * ink).astype(np.uint8)


def save(image: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def _alpha_drawing(ink: np.ndarray, colour: tuple[int, int, int]) -> Image.Image:
    """Ink of one colour on a fully transparent canvas (the canvas colour is arbitrary)."""
    rgba = np.zeros((*ink.shape, 4), np.uint8)
    rgba[..., :3] = (0, 0, 0) if sum(colour) > 384 else (255, 255, 255)  # the wrong guess
    rgba[ink > 0.02, :3] = colour
    rgba[..., 3] = np.round(255 * np.clip(ink * 1.4, 0, 1)).astype(np.uint8)
    return Image.fromarray(rgba, "RGBA")


def _exif_rotated(paper: np.ndarray) -> bytes:
    """A phone JPEG: pixels stored sideways, EXIF Orientation 6 says "turn 90° clockwise"."""
    stored = Image.fromarray(paper).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    return save(stored.convert("RGB"), "JPEG", quality=92, exif=exif)


def _animated_gif(paper: np.ndarray) -> bytes:
    first = Image.fromarray(paper).convert("P")
    other = Image.fromarray(np.rot90(paper).copy()).convert("P")  # a different picture after it
    buf = io.BytesIO()
    first.save(buf, "GIF", save_all=True, append_images=[other], duration=100, loop=0)
    return buf.getvalue()


def _palette_with_transparency(ink: np.ndarray) -> bytes:
    """Palette PNG: index 0 transparent background, index 1 dark ink."""
    indexed = (ink > 0.35).astype(np.uint8)
    image = Image.fromarray(indexed, "P")
    image.putpalette([255, 255, 255, 20, 20, 20] + [0, 0, 0] * 254)
    return save(image, "PNG", transparency=0)


CASES: dict[str, Callable[[np.ndarray], bytes]] = {
    "jpeg": lambda ink: save(Image.fromarray(paper(ink)).convert("RGB"), "JPEG", quality=85),
    "webp-lossy": lambda ink: save(Image.fromarray(paper(ink)), "WEBP", quality=80),
    "webp-lossless": lambda ink: save(Image.fromarray(paper(ink)), "WEBP", lossless=True),
    "gif-first-frame": lambda ink: _animated_gif(paper(ink)),
    "bmp": lambda ink: save(Image.fromarray(paper(ink)).convert("RGB"), "BMP"),
    "tiff": lambda ink: save(Image.fromarray(paper(ink)), "TIFF"),
    "exif-orientation": lambda ink: _exif_rotated(paper(ink)),
    "png-16-bit": lambda ink: save(
        Image.fromarray((paper(ink).astype(np.uint16) * 257).astype(np.uint16)), "PNG"
    ),
    "png-16-bit-narrow-range": lambda ink: save(
        Image.fromarray((paper(ink).astype(np.uint16) * 16).astype(np.uint16)), "PNG"
    ),
    "tiff-32-bit-integer": lambda ink: save(
        Image.fromarray(paper(ink).astype(np.int32) * 1_000_000), "TIFF"
    ),
    "tiff-float": lambda ink: save(
        Image.fromarray((paper(ink) / 255.0).astype(np.float32)), "TIFF"
    ),
    "cmyk-jpeg": lambda ink: save(Image.fromarray(paper(ink)).convert("CMYK"), "JPEG"),
    "cmyk-tiff": lambda ink: save(Image.fromarray(paper(ink)).convert("CMYK"), "TIFF"),
    "palette": lambda ink: save(Image.fromarray(paper(ink)).convert("P"), "PNG"),
    "palette-transparent": _palette_with_transparency,
    "la-black-ink": lambda ink: save(_alpha_drawing(ink, (0, 0, 0)).convert("LA"), "PNG"),
    "rgba-black-ink": lambda ink: save(_alpha_drawing(ink, (0, 0, 0)), "PNG"),
    "rgba-white-ink": lambda ink: save(_alpha_drawing(ink, (255, 255, 255)), "PNG"),
    "rgba-red-ink": lambda ink: save(_alpha_drawing(ink, (220, 30, 30)), "PNG"),
    "rgba-yellow-ink": lambda ink: save(_alpha_drawing(ink, (250, 230, 40)), "PNG"),
    "webp-transparent-white-ink": lambda ink: save(
        _alpha_drawing(ink, (255, 255, 255)), "WEBP", lossless=True
    ),
}
