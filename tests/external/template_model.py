"""A nearest-template digit classifier in numpy: each digit's mean training image is its
template, and the probabilities are a softmax over an image's correlation with the ten
templates. A stand-in model of this contract for other projects' servers, which run without
TensorFlow; about 60% right, which is not what it is for."""

from __future__ import annotations

import numpy as np


def templates(path: str) -> np.ndarray:
    """[784, 10]: each digit's mean training image, scaled to [0, 1]."""
    with np.load(path) as data:
        x, y = data["x_train"].reshape(-1, 784) / 255.0, data["y_train"]
    return np.stack([x[y == d].mean(axis=0) for d in range(10)], axis=1)


def probabilities(images: np.ndarray, weights: np.ndarray) -> np.ndarray:
    logits = images.reshape(len(images), 784).astype(np.float64) @ weights / 10.0
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
