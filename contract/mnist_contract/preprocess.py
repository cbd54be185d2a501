"""Any picture of a digit → the 28×28 frame MNIST's digits live in.

MNIST's own recipe (LeCun et al.): grayscale, light ink on a dark background, the ink's bounding
box scaled to fit 20×20 keeping its aspect ratio, then placed in a 28×28 frame so that its
centre of mass sits at the centre. A photo or scan of dark ink on white paper is turned round
first. Shared by the gateway (server-side preprocessing) and the client SDK, so both see the
same frame::

    >>> frame = to_mnist_frame(np.asarray(Image.open("seven.png").convert("L")))
    >>> frame.shape, frame.dtype
    ((28, 28), dtype('uint8'))
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

import numpy as np

# The *ImagePlugin imports register the accepted formats' readers: Image.open(formats=...) only
# looks among loaded plugins, and Pillow loads some of these lazily.
from PIL import (  # noqa: F401
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageOps,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    UnidentifiedImageError,
    WebPImagePlugin,
)

SIDE = 28
INK_BOX = 20
CENTRE = 14.0
# A pixel counts as ink once it is this far from the background level (0-255 scale).
INK_THRESHOLD = 20
# Images at least this large get their uneven background (lighting) flattened.
_FLATTEN_MIN_SIDE = 48
# The raster formats Pillow decodes itself (no external programs), as Pillow names them. (A
# camera's multi-picture JPEG opens through JPEG's reader and reports itself as MPO.)
SUPPORTED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
ACCEPTED = "PNG, JPEG, WebP, GIF, BMP or TIFF"
# Formats people send that Pillow is not asked to read, known by their first bytes, so the
# refusal can name what was sent.
_SIGNATURES = (
    (b"%PDF", "PDF"),
    (b"8BPS", "PSD"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"<svg", "SVG"),
    (b"<?xml", "SVG/XML"),
)
_HIGH_DEPTH_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
# The media types of the accepted formats, for raw HTTP bodies and the demo page's file picker.
MEDIA_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp", "image/tiff")


def image_format(data: bytes) -> str | None:
    """The accepted format ``data`` starts like (``"PNG"``, ``"JPEG"``, …), or ``None``.

    A cheap look at the first bytes, for callers that want to refuse early (the client SDK);
    :func:`decode_image` is what decides.
    """
    head = bytes(data[:12])
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith(b"BM"):
        return "BMP"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    return None


class ImageError(ValueError):
    """The bytes are not a usable image; the message says why."""


@dataclass(frozen=True)
class ImageLimits:
    """Refuse images before decoding them in full: a 100-byte PNG can claim 50,000 × 50,000."""

    max_side: int = 4096
    max_pixels: int = 4096 * 4096


def decode_image(data: bytes, limits: ImageLimits = ImageLimits()) -> np.ndarray:
    """Image file bytes → a 2-D uint8 grayscale array, checking the size from the header first.

    PNG, JPEG, WebP, GIF (first frame), BMP and TIFF, in any mode: EXIF orientation is applied,
    16/32-bit and float pixels are scaled (not clipped) to 8 bits, and transparency becomes
    whichever of black or white stands out from the ink.
    """
    if not data:
        raise ImageError("empty image data")
    try:
        with warnings.catch_warnings():
            # Pillow warns, then errors, on huge images; we check the size ourselves below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
            _check_size(opened, limits)
            gray = to_grayscale(ImageOps.exif_transpose(opened))
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(
            f"image is too large to decode ({exc}); the limit is {limits.max_pixels:,} pixels"
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageError(_unsupported(data)) from exc
    except (OSError, SyntaxError, ValueError, TypeError, KeyError, struct.error) as exc:
        # Truncated or corrupt files fail here, when the pixels are actually decoded.
        raise ImageError(f"cannot decode image: {exc}") from exc
    return gray


def _check_size(image: Image.Image, limits: ImageLimits) -> None:
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError(f"image has no pixels ({width}×{height})")
    if max(width, height) > limits.max_side or width * height > limits.max_pixels:
        raise ImageError(
            f"image is {width}×{height} pixels; the limit is {limits.max_side} per side "
            f"and {limits.max_pixels:,} in all"
        )


def _unsupported(data: bytes) -> str:
    head = data[:16]
    named = next((name for magic, name in _SIGNATURES if head.startswith(magic)), None)
    if named is None and head[4:8] == b"ftyp":
        brand = head[8:12].decode("ascii", "replace").strip()
        named = "AVIF" if brand.startswith("avi") else f"HEIF/HEIC ({brand})"
    if named:
        return f"unsupported image format {named}; send {ACCEPTED}"
    return f"not an image in a supported format (cannot identify the data); send {ACCEPTED}"


def to_grayscale(image: Image.Image) -> np.ndarray:
    """Any Pillow image → 2-D uint8 grayscale, dark and light kept as the picture has them."""
    if image.mode in _HIGH_DEPTH_MODES:
        return _stretch_to_uint8(np.asarray(image, dtype=np.float64))
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        return _flatten_alpha(image.convert("RGBA"))
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, 1-bit, palette
    return np.asarray(image.convert("L"), dtype=np.uint8)


def _stretch_to_uint8(values: np.ndarray) -> np.ndarray:
    """16/32-bit or float pixels: their own range onto 0-255 (a 16-bit scan of a page that
    uses only 0-4,000 still has a digit in it; clipping at 255 would whiten it all)."""
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.round((values - low) * (255.0 / (high - low))).astype(np.uint8)


def _flatten_alpha(rgba: Image.Image) -> np.ndarray:
    """Transparency becomes background whatever the ink's colour: composited onto black for
    light ink, onto white for dark ink, judged by the visible pixels' mean luminance."""
    pixels = np.asarray(rgba, dtype=np.float32)
    luminance = pixels[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    alpha = pixels[..., 3] / 255.0
    visible = float(alpha.sum())
    ink_level = float((luminance * alpha).sum() / visible) if visible > 0 else 0.0
    background = 0.0 if ink_level >= 128 else 255.0
    flat = luminance * alpha + background * (1.0 - alpha)
    return np.asarray(np.clip(np.round(flat), 0, 255), dtype=np.uint8)


def is_mnist_frame(gray: np.ndarray) -> bool:
    """Already 28×28 with a dark border, i.e. light-on-dark and (we assume) centred."""
    return gray.shape == (SIDE, SIDE) and _border_level(gray) < 128


def frames_already_mnist(stack: np.ndarray) -> np.ndarray:
    """For an N×28×28 stack, which frames :func:`is_mnist_frame` would accept (vectorised)."""
    border = np.concatenate(
        [stack[:, 0, :], stack[:, -1, :], stack[:, 1:-1, 0], stack[:, 1:-1, -1]], axis=1
    )
    # The median of the 108 border pixels is the mean of the middle two: it is below 128 when
    # their sum is below 256. One partition finds them; np.median's general machinery costs
    # three times as much per call, and this runs on every binary request.
    middle = border.shape[1] // 2
    pair = np.partition(border, (middle - 1, middle), axis=1)
    return np.asarray(pair[:, middle - 1].astype(np.float64) + pair[:, middle] < 256)


def to_mnist_frame(gray: np.ndarray) -> np.ndarray:
    """Grayscale uint8 of any size → a 28×28 uint8 MNIST frame (light digit on dark).

    Frames that already are 28×28 light-on-dark are returned unchanged.
    """
    if gray.ndim != 2:
        raise ImageError(f"expected a 2-D grayscale image, got shape {gray.shape}")
    if is_mnist_frame(gray):
        return gray
    ink = gray.astype(np.float32)
    if _border_level(gray) >= 128:
        ink = 255.0 - ink  # dark on light → light on dark
    ink = np.clip(ink - _background(ink), 0, 255)
    mask = ink > INK_THRESHOLD
    if not mask.any():
        raise ImageError(
            "no digit found: the image is blank (no ink stands out from the background)"
        )
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    # Stretch contrast so faint pencil and bold marker reach the same peak, as MNIST's do.
    crop = crop * (255.0 / max(float(crop.max()), 1.0))
    height, width = crop.shape
    scale = INK_BOX / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = Image.fromarray(crop.astype(np.uint8)).resize(
        (new_w, new_h), Image.Resampling.LANCZOS
    )
    digit = np.asarray(resized, dtype=np.float32)
    return _centre_by_mass(digit)


def _background(ink: np.ndarray) -> np.ndarray | float:
    """The background level under light-on-dark ink: one level for small images; for larger
    ones a smooth surface, so paper lit unevenly (a phone photo) does not read as ink.

    The surface (a plane plus curvature along each axis) is fitted to the border pixels, where
    an upload has paper, and refitted without the ones that stand out (ink touching the edge);
    strokes inside are never part of the fit, however thick.
    """
    height, width = ink.shape
    if min(height, width) < _FLATTEN_MIN_SIDE:
        return float(np.median(_border(ink)))
    ys = np.linspace(-1.0, 1.0, height, dtype=np.float32)
    xs = np.linspace(-1.0, 1.0, width, dtype=np.float32)
    rows = np.concatenate(
        [
            np.zeros(width, int),
            np.full(width, height - 1),
            np.arange(1, height - 1),
            np.arange(1, height - 1),
        ]
    )
    cols = np.concatenate(
        [
            np.arange(width),
            np.arange(width),
            np.zeros(height - 2, int),
            np.full(height - 2, width - 1),
        ]
    )
    values = ink[rows, cols]
    terms = _surface_terms(xs[cols], ys[rows])
    keep = np.ones(len(values), dtype=bool)
    for _ in range(3):
        coefficients = np.linalg.lstsq(terms[keep], values[keep], rcond=None)[0]
        residual = values - terms @ coefficients
        spread = float(np.median(np.abs(residual[keep]))) * 1.4826
        keep = residual < max(INK_THRESHOLD / 2, 3 * spread)
    c0, cx, cy, cxx, cyy = (float(c) for c in coefficients)
    # The surface separates into a row part and a column part: broadcast them instead of
    # building a (pixels × terms) matrix, which for a 4096² upload would be 335 MB.
    across = (cx * xs + cxx * xs * xs)[None, :]
    down = (c0 + cy * ys + cyy * ys * ys)[:, None]
    return np.asarray(across + down, dtype=np.float32)


def _surface_terms(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.stack([np.ones_like(x), x, y, x * x, y * y], axis=1)


def _centre_by_mass(digit: np.ndarray) -> np.ndarray:
    frame = np.zeros((SIDE, SIDE), dtype=np.float32)
    h, w = digit.shape
    total = float(digit.sum())
    if total > 0:
        cy = float((digit.sum(axis=1) * np.arange(h)).sum() / total)
        cx = float((digit.sum(axis=0) * np.arange(w)).sum() / total)
    else:
        cy, cx = (h - 1) / 2, (w - 1) / 2
    # MNIST puts the centre of mass at pixel (14, 14), not at the geometric 13.5: measured on
    # the test set, this reproduces the original frames twice as closely (mean |Δ| 7 vs 15).
    top = round(CENTRE - cy)
    left = round(CENTRE - cx)
    # Keep the whole box inside the frame even when the mass sits far off-centre.
    top = min(max(top, 0), SIDE - h)
    left = min(max(left, 0), SIDE - w)
    frame[top : top + h, left : left + w] = digit
    return np.clip(frame, 0, 255).round().astype(np.uint8)


def _border(gray: np.ndarray) -> np.ndarray:
    return np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])


def _border_level(gray: np.ndarray) -> float:
    return float(np.median(_border(gray)))
