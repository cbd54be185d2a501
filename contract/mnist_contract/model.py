"""The model's public interface: its name, its two signatures, what an answer is ranked by.

The gateway's metadata (REST and gRPC), the training job's export and the clients all read
these; a change here is a change of the served contract. Standard library only, so that even
``dev.py`` (which runs before anything is installed) reads the same facts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MODEL_NAME = "mnist"
INPUT_NAME = "images"
CLASSES = 10
MAX_TOP_K = CLASSES


@dataclass(frozen=True)
class Signature:
    """One serving signature: float32 ``images`` of ``input_shape`` (after the batch axis) in,
    float32 [N, 10] ``output`` out."""

    name: str
    input_shape: tuple[int, ...]
    output: str

    @property
    def batched_input_shape(self) -> tuple[int, ...]:
        """The input shape with -1 for the batch axis, as metadata documents write it."""
        return (-1, *self.input_shape)

    @property
    def batched_output_shape(self) -> tuple[int, ...]:
        return (-1, CLASSES)


SERVING_DEFAULT = Signature("serving_default", (28, 28, 1), "probabilities")
# The classic TF Serving MNIST example's contract: flat 784-pixel rows in, "scores" out.
PREDICT_IMAGES = Signature("predict_images", (784,), "scores")
SIGNATURES: dict[str, Signature] = {s.name: s for s in (SERVING_DEFAULT, PREDICT_IMAGES)}
PREDICT_METHOD = "tensorflow/serving/predict"


def top_k_problem(k: object) -> str | None:
    """Why ``k`` is not a usable top-k count (a whole number 0-10), or ``None`` when it is."""
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= MAX_TOP_K:
        return f"top_k must be an integer 0-{MAX_TOP_K}, got {k!r}"
    return None


def top_k(probabilities: Iterable[float], k: int) -> list[tuple[int, float]]:
    """The ``k`` most probable digits, most probable first; ties keep the lower digit first."""
    values = [float(p) for p in probabilities]
    order = sorted(range(len(values)), key=lambda digit: (-values[digit], digit))[:k]
    return [(digit, values[digit]) for digit in order]
