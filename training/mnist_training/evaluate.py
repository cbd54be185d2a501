"""How the exported model reads digits that are not MNIST's test set, as people send them.

Two checks, both through the digits API's own preprocessing (:mod:`mnist_contract.preprocess`,
the code the gateway runs on an uploaded file), on the exported LiteRT model:

- ``other_writers``: the UCI optical digits (1,797 digits by 43 writers, none of them MNIST's,
  shipped inside scikit-learn as 8×8 scans), each drawn as an upload: dark ink on light paper,
  enlarged, with a margin, saved as PNG.
- ``photos``: MNIST test digits made to look like phone photos of paper: dark ink, enlarged,
  uneven lighting, blur, sensor noise, JPEG compression.

Renderings are random but seeded, so a number is reproducible::

    >>> figures, answers = robustness(Path("models/mnist/1/model.tflite"), data, seed=42)
    >>> figures
    {'other_writers_images': 1797, 'photos_images': 1000, 'other_writers': 0.97..., ...}
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from mnist_contract.preprocess import decode_image, to_mnist_frame
from mnist_training.data import MnistData
from mnist_training.export import tflite_predict
from mnist_training.fit import scale

PHOTO_IMAGES = 1000


Answers = dict[str, tuple[np.ndarray, np.ndarray]]  # set → (probabilities, labels)


def robustness(
    tflite: Path, data: MnistData, seed: int, most: int | None = None
) -> tuple[dict[str, Any], Answers]:
    """Accuracy on other writers' digits and on photo-like renderings of MNIST test digits
    (at most ``most`` of each: quick runs on a subset check a subset), and the model's
    answers on each set with their labels."""
    rng = np.random.default_rng(seed)
    found: dict[str, Any] = {}
    answers: Answers = {}
    uci_images, uci_labels = uci_digits()
    uci_images, uci_labels = uci_images[:most], uci_labels[:most]
    uploads = [render_upload(d, rng) for d in uci_images]
    answers["other_writers"] = (_probabilities(tflite, uploads), uci_labels)
    found["other_writers_images"] = len(uploads)
    count = min(PHOTO_IMAGES, len(data.x_test), most or PHOTO_IMAGES)
    photos = [render_photo(d, rng) for d in data.x_test[:count]]
    answers["photos"] = (_probabilities(tflite, photos), data.y_test[:count])
    found["photos_images"] = count
    for name, (probs, labels) in answers.items():
        found[name] = round(float((probs.argmax(axis=1) == labels).mean()), 6)
    return found, answers


def format_summary(found: dict[str, Any]) -> str:
    return f"other writers {found['other_writers']:.4f}  photos {found['photos']:.4f}"


def uci_digits() -> tuple[np.ndarray, np.ndarray]:
    """The UCI digits as float 8×8 ink levels in [0, 1], and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return np.asarray(digits.images) / 16.0, np.asarray(digits.target)


def render_upload(ink: np.ndarray, rng: np.random.Generator) -> bytes:
    """A 2-D ink map in [0, 1] drawn as a scanned or drawn upload: PNG, dark on light."""
    side = int(rng.integers(64, 160))
    big = _resize(ink, side, side)
    margin = int(side * rng.uniform(0.15, 0.6))
    paper = rng.uniform(225, 255)
    pen = rng.uniform(0, 70)
    canvas = np.full((side + 2 * margin, side + 2 * margin), paper, dtype=np.float32)
    canvas[margin : margin + side, margin : margin + side] = paper - big * (paper - pen)
    return _encode(canvas, "PNG")


def render_photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """An MNIST frame (light on dark, uint8) as a phone photo of ink on paper: JPEG."""
    side = int(rng.integers(84, 200))
    ink = _resize(digit.astype(np.float32) / 255.0, side, side)
    margin = int(side * rng.uniform(0.1, 0.4))
    full = side + 2 * margin
    canvas = np.zeros((full, full), dtype=np.float32)
    canvas[margin : margin + side, margin : margin + side] = ink
    # Paper lit from one side: a brightness ramp, then ink, blur, noise, compression.
    ramp = np.linspace(rng.uniform(170, 215), rng.uniform(225, 255), full, dtype=np.float32)
    paper = ramp[None, :] if rng.random() < 0.5 else ramp[:, None]
    pen = rng.uniform(10, 80)
    photo = paper - canvas * (paper - pen)
    blurred = Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5))
    )
    noisy = np.asarray(blurred, dtype=np.float32) + rng.normal(0, rng.uniform(2, 8), (full, full))
    return _encode(noisy, "JPEG", quality=int(rng.integers(60, 92)))


def _resize(ink: np.ndarray, width: int, height: int) -> np.ndarray:
    image = Image.fromarray(ink.astype(np.float32))  # mode F: resampling keeps fractions
    return np.asarray(image.resize((width, height), Image.Resampling.BICUBIC)).clip(0, 1)


def _encode(gray: np.ndarray, fmt: str, **options: Any) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8)).save(buf, fmt, **options)
    return buf.getvalue()


def _probabilities(tflite: Path, files: list[bytes]) -> np.ndarray:
    frames = np.stack([to_mnist_frame(decode_image(f)) for f in files])
    return tflite_predict(tflite, scale(frames))
