"""Every image a person may send (formats, modes, EXIF orientation, transparency) read into
the frame the model sees; each case draws a real MNIST test digit the way a person's file would
hold it and must give the frame of a plain PNG of the same drawing."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mnist_contract.preprocess import ImageError, decode_image, image_format, to_mnist_frame
from tests.helpers.drawings import CASES, ink_of, paper, save


def _reference_frame(digits) -> np.ndarray:
    return to_mnist_frame(decode_image(save(Image.fromarray(paper(ink_of(digits))), "PNG")))


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_model_sees_the_same_frame(case: str, digits) -> None:
    reference = _reference_frame(digits).astype(np.float64)
    frame = to_mnist_frame(decode_image(CASES[case](ink_of(digits)))).astype(np.float64)
    correlation = np.corrcoef(reference.ravel(), frame.ravel())[0, 1]
    assert correlation > 0.9, f"{case}: frame correlates {correlation:.3f} with the plain PNG's"


def test_the_gif_frame_read_is_the_first() -> None:
    first = np.full((60, 60), 255, np.uint8)
    first[10:50, 28:32] = 0  # a "1"
    second = np.full((60, 60), 255, np.uint8)
    second[28:32, 10:50] = 0  # a bar across
    buf = io.BytesIO()
    Image.fromarray(first).save(
        buf, "GIF", save_all=True, append_images=[Image.fromarray(second)], duration=50
    )
    gray = decode_image(buf.getvalue())
    assert gray[30, 30] < 64 and gray[30, 15] > 192  # the vertical stroke, not the bar


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "PDF"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "HEIF/HEIC (heic)"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", "AVIF"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "SVG"),
        (b"8BPS\x00\x01\x00\x00\x00\x00\x00\x00", "PSD"),
    ],
)
def test_unsupported_formats_are_named_and_the_accepted_ones_listed(data, named) -> None:
    with pytest.raises(ImageError) as caught:
        decode_image(data)
    assert f"unsupported image format {named}" in str(caught.value)
    assert "PNG, JPEG, WebP, GIF, BMP or TIFF" in str(caught.value)


def test_formats_pillow_could_read_but_we_do_not_are_refused() -> None:
    """ICO, PCX, TGA…: Pillow has readers for them, but only the listed ones are opened."""
    ico = save(Image.new("L", (32, 32), 255), "ICO")
    with pytest.raises(ImageError, match="unsupported image format ICO"):
        decode_image(ico)
    pcx = save(Image.new("L", (32, 32), 255), "PCX")
    with pytest.raises(ImageError, match="not an image in a supported format"):
        decode_image(pcx)


def test_size_limits_hold_for_every_format() -> None:
    from mnist_contract.preprocess import ImageLimits

    big = Image.new("L", (300, 200), 255)
    for fmt in ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"):
        with pytest.raises(ImageError, match="300×200 pixels; the limit is 256 per side"):
            decode_image(save(big, fmt), ImageLimits(max_side=256, max_pixels=256 * 256))


def test_format_sniffing_matches_what_pillow_writes() -> None:
    image = Image.new("RGB", (8, 8), (255, 255, 255))
    for fmt in ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"):
        assert image_format(save(image, fmt)) == fmt
    assert image_format(b"hello") is None
