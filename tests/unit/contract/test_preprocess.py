"""MNIST preprocessing and image decoding, on real digits."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from mnist_contract.preprocess import ImageError, ImageLimits, decode_image, to_mnist_frame


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_an_mnist_frame_is_left_alone(digits) -> None:
    frame = digits["x_test"][0]
    assert to_mnist_frame(frame) is frame


def test_a_large_dark_on_light_scan_becomes_a_centred_light_on_dark_frame(digits) -> None:
    original = digits["x_test"][0]
    scan = np.asarray(Image.fromarray(255 - original).resize((420, 300)))
    frame = to_mnist_frame(decode_image(_png(scan)))
    assert frame.shape == (28, 28) and frame.dtype == np.uint8
    assert frame[0].max() == 0 and frame[:, 0].max() == 0  # dark border: light digit on dark
    ys, xs = np.nonzero(frame > 40)
    assert ys.max() - ys.min() <= 20 and xs.max() - xs.min() <= 20  # fits the 20×20 box
    weights = frame.astype(float)
    cy = (weights.sum(1) * np.arange(28)).sum() / weights.sum()
    cx = (weights.sum(0) * np.arange(28)).sum() / weights.sum()
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1


def test_transparent_canvas_strokes_count_as_ink() -> None:
    rgba = np.zeros((100, 100, 4), np.uint8)
    rgba[20:80, 45:55] = (0, 0, 0, 255)  # a black "1" on a transparent canvas
    frame = to_mnist_frame(decode_image(_png(rgba)))
    assert frame.max() > 200 and frame[0].max() == 0


def test_blank_image_is_refused() -> None:
    with pytest.raises(ImageError, match="blank"):
        to_mnist_frame(np.full((50, 50), 255, np.uint8))


def test_truncated_png_is_refused(digits) -> None:
    data = _png(np.asarray(Image.fromarray(digits["x_test"][0]).resize((200, 200))))
    with pytest.raises(ImageError, match=r"cannot decode|cannot identify"):
        decode_image(data[: len(data) // 2])


def test_not_an_image() -> None:
    with pytest.raises(ImageError, match="cannot identify"):
        decode_image(b"GIF89a? no, just text")


def _bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming a huge image, with almost no data behind it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 100))
        + chunk(b"IEND", b"")
    )


def test_a_decompression_bomb_is_refused_from_its_header() -> None:
    with pytest.raises(ImageError, match="5000×5000 pixels; the limit is 4096 per side"):
        decode_image(_bomb_png(5_000, 5_000), ImageLimits())
    with pytest.raises(ImageError, match=r"too large to decode.*2500000000 pixels"):
        decode_image(_bomb_png(50_000, 50_000), ImageLimits())
