"""What the field does to digits, applied to MNIST test digits (model inputs [N, 28, 28] in
[0, 1]): the shifts the drift score must see (docs/drift.md), shared by its end-to-end test and
``benchmarks.drift_thresholds``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

Shift = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def rotated(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each digit turned by 20-35°, either way."""
    angles = rng.uniform(20, 35, len(x)) * rng.choice([-1, 1], len(x))
    return np.stack(
        [ndimage.rotate(i, a, reshape=False, order=1) for i, a in zip(x, angles, strict=True)]
    )


def off_centre(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each digit moved 3-5 px along both axes."""
    moves = rng.choice([-1, 1], (len(x), 2)) * rng.integers(3, 6, (len(x), 2))
    return np.stack([ndimage.shift(i, m, order=0) for i, m in zip(x, moves, strict=True)])


def scanner_noise(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise (σ 0.1) and 2% white specks."""
    return (x + rng.normal(0, 0.1, x.shape) + (rng.random(x.shape) < 0.02)).clip(0, 1)


SHIFTS: dict[str, Shift] = {
    "inverted": lambda x, _rng: 1.0 - x,
    "thick strokes": lambda x, _rng: ndimage.grey_dilation(x, size=(1, 2, 2)),
    "thin strokes": lambda x, _rng: ndimage.grey_erosion(x, size=(1, 2, 2)),
    "rotated 20-35°": rotated,
    "scanner noise": scanner_noise,
    "off centre 3-5 px": off_centre,
}
