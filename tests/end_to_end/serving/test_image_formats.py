"""Every image a person may send: formats, modes, EXIF orientation and transparency.

Each case draws a real MNIST test digit the way a person's file would hold it, then checks
two things: the frame the model sees matches the frame of a plain PNG of the same drawing, and
the gateway (in-process, real model) answers the right digit.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from mnist_contract.preprocess import ImageError, decode_image, image_format, to_mnist_frame

# A test digit the fixture model reads correctly from a plain PNG (checked below).
DIGIT_INDEX = 0
SIDE = 112


def _ink(digits) -> np.ndarray:
    """The digit's ink in [0, 1], enlarged 4× with a margin, as a person's drawing."""
    frame = digits["x_test"][DIGIT_INDEX]
    big = Image.fromarray(frame).resize((SIDE, SIDE), Image.Resampling.BICUBIC)
    ink = np.zeros((SIDE + 48, SIDE + 48), np.float32)
    ink[24:-24, 24:-24] = np.asarray(big, np.float32) / 255.0
    return ink


def _paper(ink: np.ndarray) -> np.ndarray:
    """Dark ink on light paper, 8-bit."""
    return np.round(250 - 230 * ink).astype(np.uint8)


def _save(image: Image.Image, fmt: str, **options) -> bytes:
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
    return _save(stored.convert("RGB"), "JPEG", quality=92, exif=exif)


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
    return _save(image, "PNG", transparency=0)


CASES: dict[str, Callable[[np.ndarray], bytes]] = {
    "jpeg": lambda ink: _save(Image.fromarray(_paper(ink)).convert("RGB"), "JPEG", quality=85),
    "webp-lossy": lambda ink: _save(Image.fromarray(_paper(ink)), "WEBP", quality=80),
    "webp-lossless": lambda ink: _save(Image.fromarray(_paper(ink)), "WEBP", lossless=True),
    "gif-first-frame": lambda ink: _animated_gif(_paper(ink)),
    "bmp": lambda ink: _save(Image.fromarray(_paper(ink)).convert("RGB"), "BMP"),
    "tiff": lambda ink: _save(Image.fromarray(_paper(ink)), "TIFF"),
    "exif-orientation": lambda ink: _exif_rotated(_paper(ink)),
    "png-16-bit": lambda ink: _save(
        Image.fromarray((_paper(ink).astype(np.uint16) * 257).astype(np.uint16)), "PNG"
    ),
    "png-16-bit-narrow-range": lambda ink: _save(
        Image.fromarray((_paper(ink).astype(np.uint16) * 16).astype(np.uint16)), "PNG"
    ),
    "tiff-32-bit-integer": lambda ink: _save(
        Image.fromarray(_paper(ink).astype(np.int32) * 1_000_000), "TIFF"
    ),
    "tiff-float": lambda ink: _save(
        Image.fromarray((_paper(ink) / 255.0).astype(np.float32)), "TIFF"
    ),
    "cmyk-jpeg": lambda ink: _save(Image.fromarray(_paper(ink)).convert("CMYK"), "JPEG"),
    "cmyk-tiff": lambda ink: _save(Image.fromarray(_paper(ink)).convert("CMYK"), "TIFF"),
    "palette": lambda ink: _save(Image.fromarray(_paper(ink)).convert("P"), "PNG"),
    "palette-transparent": _palette_with_transparency,
    "la-black-ink": lambda ink: _save(_alpha_drawing(ink, (0, 0, 0)).convert("LA"), "PNG"),
    "rgba-black-ink": lambda ink: _save(_alpha_drawing(ink, (0, 0, 0)), "PNG"),
    "rgba-white-ink": lambda ink: _save(_alpha_drawing(ink, (255, 255, 255)), "PNG"),
    "rgba-red-ink": lambda ink: _save(_alpha_drawing(ink, (220, 30, 30)), "PNG"),
    "rgba-yellow-ink": lambda ink: _save(_alpha_drawing(ink, (250, 230, 40)), "PNG"),
    "webp-transparent-white-ink": lambda ink: _save(
        _alpha_drawing(ink, (255, 255, 255)), "WEBP", lossless=True
    ),
}

MEDIA_TYPE = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp",
              "GIF": "image/gif", "BMP": "image/bmp", "TIFF": "image/tiff"}  # fmt: skip


def _reference_frame(digits) -> np.ndarray:
    return to_mnist_frame(decode_image(_save(Image.fromarray(_paper(_ink(digits))), "PNG")))


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_model_sees_the_same_frame(case: str, digits) -> None:
    reference = _reference_frame(digits).astype(np.float64)
    frame = to_mnist_frame(decode_image(CASES[case](_ink(digits)))).astype(np.float64)
    correlation = np.corrcoef(reference.ravel(), frame.ravel())[0, 1]
    assert correlation > 0.9, f"{case}: frame correlates {correlation:.3f} with the plain PNG's"


@pytest.mark.parametrize("case", sorted(CASES))
async def test_the_gateway_reads_the_right_digit(case: str, api, digits) -> None:
    data = CASES[case](_ink(digits))
    fmt = image_format(data)
    assert fmt is not None, case
    answer = await api.post(
        "/v1/digits:classify", content=data, headers={"Content-Type": MEDIA_TYPE[fmt]}
    )
    assert answer.status_code == 200, answer.text
    expected = int(digits["y_test"][DIGIT_INDEX])
    assert answer.json()["predictions"][0]["digit"] == expected, case


async def test_the_reference_drawing_is_read_right(api, digits) -> None:
    """Guards the cases above: the plain PNG of the chosen digit is classified correctly."""
    png = _save(Image.fromarray(_paper(_ink(digits))), "PNG")
    answer = await api.post(
        "/v1/digits:classify", content=png, headers={"Content-Type": "image/png"}
    )
    assert answer.json()["predictions"][0]["digit"] == int(digits["y_test"][DIGIT_INDEX])


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
    ico = _save(Image.new("L", (32, 32), 255), "ICO")
    with pytest.raises(ImageError, match="unsupported image format ICO"):
        decode_image(ico)
    pcx = _save(Image.new("L", (32, 32), 255), "PCX")
    with pytest.raises(ImageError, match="not an image in a supported format"):
        decode_image(pcx)


def test_size_limits_hold_for_every_format() -> None:
    from mnist_contract.preprocess import ImageLimits

    big = Image.new("L", (300, 200), 255)
    for fmt in ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"):
        with pytest.raises(ImageError, match="300×200 pixels; the limit is 256 per side"):
            decode_image(_save(big, fmt), ImageLimits(max_side=256, max_pixels=256 * 256))


def test_format_sniffing_matches_what_pillow_writes() -> None:
    image = Image.new("RGB", (8, 8), (255, 255, 255))
    for fmt in ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"):
        assert image_format(_save(image, fmt)) == fmt
    assert image_format(b"hello") is None
