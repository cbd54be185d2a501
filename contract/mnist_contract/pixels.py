"""The pixel-range rule, for every way pixels reach the project.

Integers are 0-255 (uint8 passes as is); floats are 0-1 and are scaled to 0-255. Anything
else (values out of range, NaN or infinity, strings, booleans) is refused with the reason.
The model itself takes float32 in [0, 1]: :func:`model_input` is the one scaling to it.
"""

from __future__ import annotations

import numpy as np


class PixelError(ValueError):
    """Pixels that break the range rule; the message says which values and why."""


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` as uint8 0-255 by the rule above, any shape."""
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.size == 0:
        return pixels.astype(np.uint8)
    if pixels.dtype.kind in "iu":
        low, high = int(pixels.min()), int(pixels.max())
        if low < 0 or high > 255:
            raise PixelError(f"integer pixels must be 0-255, found values from {low} to {high}")
        return pixels.astype(np.uint8)
    if pixels.dtype.kind == "f":
        if not np.isfinite(pixels).all():
            raise PixelError("pixels contain NaN or infinity")
        low_f, high_f = float(pixels.min()), float(pixels.max())
        if low_f < 0.0 or high_f > 1.0:
            raise PixelError(
                f"float pixels must be 0.0-1.0 (integers mean 0-255), found values from "
                f"{low_f:g} to {high_f:g}"
            )
        return np.round(pixels * 255.0).astype(np.uint8)
    raise PixelError(f"pixels must be numbers, got {pixels.dtype}")


def model_input(frames: np.ndarray) -> np.ndarray:
    """uint8 frames [N, 28, 28] (or already [N, 28, 28, 1]) → float32 [N, 28, 28, 1] in [0, 1]."""
    scaled = frames.astype(np.float32) / np.float32(255.0)
    return scaled if scaled.ndim == 4 else scaled[..., np.newaxis]
