"""Confidence that means what it says: one temperature, fitted on held-out training digits and
folded into the exported model's last layer.

A softmax trained with label smoothing (the robust recipe) aims at 0.91 for the true digit, so
its confidence understates how often it is right; a model trained without it tends to state
more than it knows. Dividing the logits by one temperature ``T`` keeps every answer's digit and
moves every confidence towards the truth; ``T`` is the one that gives the held-out digits the
highest likelihood (they take no part in training, and the test set takes no part in fitting).
Folded into the last dense layer (its weights and bias divided by ``T``), it changes no
signature and adds no operation: the SavedModel, the LiteRT files, TF Serving and the gateway
all answer calibrated probabilities.

How well a confidence means what it says is the expected calibration error (ECE): answers
grouped in 15 equal-width bins of confidence, each bin's gap between its mean confidence and
its accuracy, weighted by its share of the answers::

    >>> temperature = fit_temperature(logits, labels)
    >>> expected_calibration_error(softmax(logits / temperature), labels)
    0.0021...
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

BINS = 15
# The held-out slice: the last training digits, never the test set. 5% of the full set is 3,000
# digits, plenty to fit one number; a small run keeps at least this many.
DEFAULT_SPLIT = 0.05
FEWEST_HELD_OUT = 50
_SEARCH = (math.log(0.05), math.log(20.0))  # T from 0.05 to 20, searched on log T


@dataclass(frozen=True)
class Reliability:
    """Per bin of confidence: how many answers, their mean confidence, and how many were right."""

    counts: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray


def held_out_count(train_size: int, split: float) -> int:
    """How many of the last training digits fit the temperature (0 when ``split`` is 0)."""
    if split <= 0:
        return 0
    return min(train_size // 2, max(FEWEST_HELD_OUT, round(train_size * split)))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


def log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean log-probability of the true digits at ``temperature``."""
    scaled = logits / temperature
    shifted = scaled - scaled.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    return float((shifted[np.arange(len(labels)), labels] - log_norm).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature with the highest likelihood of ``labels`` (golden-section search on
    log T: the likelihood of a temperature-scaled softmax has one peak in T)."""
    logits = logits.astype(np.float64)
    low, high = _SEARCH
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa = log_likelihood(logits, labels, math.exp(a))
    fb = log_likelihood(logits, labels, math.exp(b))
    while high - low > 1e-5:
        if fa > fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = log_likelihood(logits, labels, math.exp(a))
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = log_likelihood(logits, labels, math.exp(b))
    return math.exp((low + high) / 2)


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> Reliability:
    """Top-label reliability in ``bins`` equal-width bins of confidence."""
    confidence = probs.max(axis=1)
    right = probs.argmax(axis=1) == labels
    slot = np.minimum((confidence * bins).astype(int), bins - 1)
    counts = np.bincount(slot, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(slot, confidence, bins) / counts
        accuracy = np.bincount(slot, right.astype(float), bins) / counts
    return Reliability(counts, mean_confidence, accuracy)


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    table = reliability(probs, labels, bins)
    filled = table.counts > 0
    gaps = np.abs(table.confidence[filled] - table.accuracy[filled])
    return float((gaps * table.counts[filled]).sum() / table.counts.sum())


def uncalibrated(probs: np.ndarray, temperature: float) -> np.ndarray:
    """The probabilities a calibrated model's ``probs`` were before the temperature:
    ``softmax(z / T) ** T`` renormalised is ``softmax(z)``."""
    logs = np.log(np.clip(probs.astype(np.float64), 1e-300, 1.0)) * temperature
    return softmax(logs)


def logits(model: Any, images: np.ndarray, batch: int = 1000) -> np.ndarray:
    """The last dense layer's inputs times its weights plus bias: the logits the softmax reads."""
    import keras

    last = model.layers[-1]
    features = keras.Model(model.inputs[0], last.input)
    kernel, bias = (np.asarray(w, np.float64) for w in last.get_weights())
    parts = [
        np.asarray(features(images[i : i + batch], training=False), np.float64)
        for i in range(0, len(images), batch)
    ]
    return np.concatenate(parts) @ kernel + bias


def fold(model: Any, temperature: float) -> None:
    """Divide the last dense layer's weights and bias by ``temperature``: its softmax then
    answers ``softmax(z / T)`` with no operation added."""
    last = model.layers[-1]
    kernel, bias = last.get_weights()
    last.set_weights([kernel / temperature, bias / temperature])


def report(probs: np.ndarray, labels: np.ndarray, temperature: float) -> dict[str, float]:
    """ECE before and after (from a calibrated model's answers), and accuracy, for the card."""
    before = uncalibrated(probs, temperature)
    return {
        "before": round(expected_calibration_error(before, labels), 5),
        "after": round(expected_calibration_error(probs, labels), 5),
        "mean_confidence_before": round(float(before.max(axis=1).mean()), 5),
        "mean_confidence_after": round(float(probs.max(axis=1).mean()), 5),
        "accuracy": round(float((probs.argmax(axis=1) == labels).mean()), 6),
    }
