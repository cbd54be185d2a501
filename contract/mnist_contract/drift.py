"""What a digit looks like to the model, in a few numbers, and how far a set of digits has moved
from the training set's: the input-drift features both the training job (its reference) and
the gateway (its live window) compute, the same way, on model inputs (float32 in [0, 1]).

Each feature answers a question a shift in the field changes, and MNIST's own preparation
keeps tight (digits fitted in 20×20, centred by their centre of mass, white ink on black):

====================  =========================================================  ======================
feature               what                                                       moved by
====================  =========================================================  ======================
``ink``               mean intensity                                             inverted images, pens
``fill``              ink-weighted mean intensity (Σx² / Σx): how solid strokes   thick and thin strokes
``border``            mean intensity of the 2-pixel frame MNIST leaves empty      noise, off-centre, inverted
``offset``            centre of mass's distance from the centre, in pixels        off-centre digits
``slant``             principal axis's angle from vertical, in degrees            rotation, other writers
``confidence``        the model's top (calibrated) probability                   anything the model finds odd
``digit``             the predicted digit (its mix)                              another population
====================  =========================================================  ======================

The score is the population stability index (PSI) per feature: each feature's values are
binned at the reference's deciles (fixed bins for the confidence, one per digit for the mix)
and ``PSI = Σ (p − q) · ln(p / q)`` over the bins, with a half count added to every bin so an
empty one stays finite. PSI is chosen over a two-sample test because binned counts are what a
gateway can keep per worker and add up (a Kolmogorov–Smirnov test needs the raw values), its
scale is the same at any window size beyond noise (a test's p-value goes to zero on any
difference once the window is large), and its usual reading (< 0.1 stable, > 0.25 moved) is
known; overall is the largest feature's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

IMAGE_FEATURES = ("ink", "fill", "border", "offset", "slant")
OUTPUT_FEATURES = ("confidence", "digit")
FEATURES = (*IMAGE_FEATURES, *OUTPUT_FEATURES)
CONFIDENCE_EDGES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)
REFERENCE_FILE = "drift_reference.json"
CENTRE = 13.5  # MNIST centres a digit's centre of mass in the 28×28 frame

_Y, _X = np.mgrid[0:28, 0:28].astype(np.float64)
_FRAME = np.ones((28, 28))
_FRAME[2:-2, 2:-2] = 0.0  # the margin MNIST leaves empty (a digit fits 20×20, centred)
# One matrix product gives every image's mass, first and second moments and frame mass.
_MOMENTS = (
    np.stack([np.ones((28, 28)), _Y, _X, _Y * _Y, _X * _X, _Y * _X, _FRAME], axis=-1)
    .reshape(784, 7)
    .astype(np.float32)
)
RAW_COLUMNS = 8  # the product's 7 columns, then the sum of squared intensities
_SLICE = 32  # images per product: 32 × 784 × 7 stays under OpenBLAS's threading threshold


def raw_moments(images: np.ndarray) -> np.ndarray:
    """[N, 8] float32 sums from which :func:`image_features` derives every feature: what the
    gateway keeps per served image (a matrix product and a sum of squares per batch)."""
    flat = np.asarray(images, np.float32).reshape(-1, 784)
    out = np.empty((len(flat), RAW_COLUMNS), np.float32)
    # In slices small enough that BLAS runs them on the calling thread: a larger product wakes
    # its thread pool, whose threads then spin beside the model's and doubled the CPU of a
    # 256-image request (docs/benchmarks.md, "What input drift costs").
    for start in range(0, len(flat), _SLICE):
        np.matmul(flat[start : start + _SLICE], _MOMENTS, out=out[start : start + _SLICE, :7])
    out[:, 7] = np.einsum("ij,ij->i", flat, flat)
    return out


def image_features(raw: np.ndarray) -> np.ndarray:
    """[N, 5] float64: :data:`IMAGE_FEATURES` from :func:`raw_moments`' sums."""
    raw = np.asarray(raw, np.float64)
    mass = raw[:, 0]
    safe = np.maximum(mass, 1e-9)
    cy, cx = raw[:, 1] / safe, raw[:, 2] / safe
    yy, xx, xy = raw[:, 3] / safe - cy * cy, raw[:, 4] / safe - cx * cx, raw[:, 5] / safe - cy * cx
    out = np.empty((len(raw), len(IMAGE_FEATURES)))
    out[:, 0] = mass / 784.0
    out[:, 1] = raw[:, 7] / safe  # ink-weighted mean intensity: how solid the strokes are
    out[:, 2] = raw[:, 6] / _FRAME.sum()
    out[:, 3] = np.where(mass > 0, np.hypot(cy - CENTRE, cx - CENTRE), 0.0)
    # The major axis's angle from vertical, in degrees (-90, 90]; x to the right, y down.
    out[:, 4] = np.degrees(0.5 * np.arctan2(2.0 * xy, yy - xx))
    return out


@dataclass(frozen=True)
class Bins:
    """One feature's bins (``edges`` between them: a value ≤ ``edges[i]`` falls in bin i or
    lower) and the reference's share of each."""

    edges: tuple[float, ...]
    shares: tuple[float, ...]

    def counts(self, values: np.ndarray) -> np.ndarray:
        where = np.searchsorted(np.asarray(self.edges), values, side="left")
        return np.bincount(where, minlength=len(self.shares))

    def psi(self, values: np.ndarray) -> float:
        """PSI of ``values`` against the reference's shares (a half count added to every bin)."""
        live = _shares(self.counts(values))
        ref = np.asarray(self.shares)
        return float(np.sum((live - ref) * np.log(live / ref)))


def _shares(counts: np.ndarray) -> np.ndarray:
    smoothed: np.ndarray = counts.astype(np.float64) + 0.5
    return smoothed / float(smoothed.sum())


def _bins(values: np.ndarray, edges: np.ndarray) -> Bins:
    edges = np.unique(edges)
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return Bins(tuple(float(e) for e in edges), tuple(float(s) for s in _shares(counts)))


@dataclass(frozen=True)
class DriftReference:
    """What the training digits look like, and how the model answers digits it did not learn
    from: every feature's bins and shares, the model's accuracy and mean confidence there."""

    images: int  # training digits the image features were read on
    answers: int  # held-out digits the confidence, digit mix and accuracy were read on
    bins: dict[str, Bins]
    accuracy: float
    mean_confidence: float

    @classmethod
    def of(
        cls, images: np.ndarray, probabilities: np.ndarray, labels: np.ndarray
    ) -> DriftReference:
        features = image_features(raw_moments(images))
        bins = {
            name: _bins(features[:, i], np.quantile(features[:, i], np.linspace(0.1, 0.9, 9)))
            for i, name in enumerate(IMAGE_FEATURES)
        }
        confidence = probabilities.max(axis=1)
        bins["confidence"] = _bins(confidence, np.asarray(CONFIDENCE_EDGES))
        bins["digit"] = _bins(probabilities.argmax(axis=1), np.arange(9) + 0.5)
        return cls(
            images=len(images),
            answers=len(probabilities),
            bins=bins,
            accuracy=float((probabilities.argmax(axis=1) == labels).mean()),
            mean_confidence=float(confidence.mean()),
        )

    def scores(
        self, features: np.ndarray, confidence: np.ndarray, digit: np.ndarray
    ) -> dict[str, float]:
        """Every feature's PSI for a window: its image features ([N, 5]), confidences, digits."""
        columns = {name: features[:, i] for i, name in enumerate(IMAGE_FEATURES)}
        columns.update(confidence=confidence, digit=digit)
        return {name: self.bins[name].psi(values) for name, values in columns.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "answers": self.answers,
            "accuracy": round(self.accuracy, 6),
            "mean_confidence": round(self.mean_confidence, 6),
            "features": {
                name: {
                    "edges": [round(e, 6) for e in b.edges],
                    "shares": [round(s, 6) for s in b.shares],
                }
                for name, b in self.bins.items()
            },
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> DriftReference:
        """The file's content; ``ValueError`` naming what is missing or malformed."""
        try:
            bins = {
                name: Bins(tuple(map(float, f["edges"])), tuple(map(float, f["shares"])))
                for name, f in doc["features"].items()
            }
            reference = cls(
                int(doc["images"]),
                int(doc["answers"]),
                bins,
                float(doc["accuracy"]),
                float(doc["mean_confidence"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a drift reference ({type(exc).__name__}: {exc})") from None
        missing = set(FEATURES) - set(bins)
        bad = [
            n
            for n, b in bins.items()
            if len(b.shares) != len(b.edges) + 1 or not all(s > 0 for s in b.shares)
        ]
        if missing or bad:
            raise ValueError(f"drift reference: missing {sorted(missing)}, malformed {sorted(bad)}")
        return reference

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1) + "\n"
