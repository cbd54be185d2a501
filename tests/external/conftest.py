"""What the outer test tells these suites: where the gateway is, and the digits to send.

Expected answers come from the gateway's TF Serving API for the same digits (read with the
standard library), so each suite checks that the Open Inference Protocol face gives the same
probabilities as the other face of the same model.
"""

from __future__ import annotations

import json
import os
import urllib.request

import numpy as np
import pytest
from gateway import REST


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """256 held-out uint8 digits [256, 28, 28] and their labels."""
    with np.load(os.environ["MNIST_FIXTURE"]) as data:
        return data["x_test"][:256], data["y_test"][:256]


@pytest.fixture(scope="session")
def expected(digits: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The gateway's TF Serving :predict answer for the same digits."""
    images = (digits[0].astype(np.float32) / 255).reshape(-1, 28, 28, 1)
    body = json.dumps({"instances": images.tolist()}).encode()
    request = urllib.request.Request(
        f"http://{REST}/v1/models/mnist:predict", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return np.array(json.load(answer)["predictions"], np.float32)
