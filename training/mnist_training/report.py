"""The model card (JSON) and the PNG plots written beside each exported version."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    confusion: np.ndarray  # rows: true digit, columns: predicted digit

    @classmethod
    def from_probabilities(cls, probs: np.ndarray, labels: np.ndarray) -> Evaluation:
        eps = 1e-7
        picked = np.clip(probs[np.arange(len(labels)), labels], eps, 1.0)
        predicted = probs.argmax(1)
        confusion = np.zeros((10, 10), dtype=np.int64)
        np.add.at(confusion, (labels, predicted), 1)
        return cls(float(-np.log(picked).mean()), float((predicted == labels).mean()), confusion)

    def per_class(self) -> dict[str, dict[str, float | int]]:
        tp = np.diag(self.confusion).astype(float)
        predicted = self.confusion.sum(0)
        actual = self.confusion.sum(1)
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(predicted > 0, tp / predicted, 0.0)
            recall = np.where(actual > 0, tp / actual, 0.0)
        return {
            str(d): {
                "precision": round(float(precision[d]), 5),
                "recall": round(float(recall[d]), 5),
                "support": int(actual[d]),
            }
            for d in range(10)
        }


def write_card(path: Path, card: dict[str, Any]) -> None:
    path.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")


def plot_training_curves(history: dict[str, list[float]], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = range(1, len(history.get("loss", [])) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, ax in (("loss", ax_loss), ("accuracy", ax_acc)):
        ax.plot(epochs, history.get(key, []), marker="o", label=f"training {key}")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="o", label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    plt.close(fig)


def plot_confusion(confusion: np.ndarray, target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    # Log colour scale: the diagonal is ~1000, the errors are 0-10; linear would hide them.
    image = ax.imshow(np.log1p(confusion), cmap="Blues")
    for t in range(10):
        for p in range(10):
            n = int(confusion[t, p])
            if n:
                colour = "white" if t == p else "black"
                ax.text(p, t, str(n), ha="center", va="center", fontsize=7, color=colour)
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_title("Confusion matrix on the test set")
    fig.colorbar(image, ax=ax, label="log(1 + count)")
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    plt.close(fig)


def plot_first_layer(
    kernels: np.ndarray, responses: np.ndarray, digit: np.ndarray, target: Path
) -> None:
    """The first convolution's filters (3×3×1×32) and their response maps on one digit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = kernels.shape[-1]
    fig, axes = plt.subplots(4, 17, figsize=(17, 4.4))
    for ax in axes.flat:
        ax.axis("off")
    axes[0, 0].imshow(digit, cmap="gray")
    axes[0, 0].set_title("input", fontsize=8)
    for i in range(n):
        row, col = divmod(i, 16)
        axes[row * 2, col + 1].imshow(kernels[:, :, 0, i], cmap="coolwarm")
        axes[row * 2 + 1, col + 1].imshow(responses[:, :, i], cmap="viridis")
    fig.suptitle("First convolution: 32 filters (rows 1, 3) and their responses (rows 2, 4)")
    fig.tight_layout()
    fig.savefig(target, dpi=90)
    plt.close(fig)


SET_TITLES = {
    "mnist_test": "MNIST test",
    "other_writers": "other writers (UCI, as uploads)",
    "photos": "photo-like renderings",
}


def plot_reliability(
    answers: dict[str, tuple[np.ndarray, np.ndarray]], temperature: float, target: Path
) -> None:
    """Reliability diagrams: per bin of confidence, how often the answers were right, before
    and after the temperature (a calibrated model's bars sit on the diagonal)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mnist_training import calibrate

    fig, axes = plt.subplots(1, len(answers), figsize=(4.6 * len(answers), 4.4), squeeze=False)
    edges = np.linspace(0, 1, calibrate.BINS + 1)
    width = 1 / calibrate.BINS
    for ax, (name, (probs, labels)) in zip(axes[0], answers.items(), strict=True):
        before = calibrate.uncalibrated(probs, temperature)
        for kind, chosen, colour, offset in (
            ("before", before, "#bbbbbb", 0.0),
            ("after", probs, "#1f77b4", width / 3),
        ):
            table = calibrate.reliability(chosen, labels)
            ece = calibrate.expected_calibration_error(chosen, labels)
            shown = table.counts > 0
            ax.bar(
                edges[:-1][shown] + offset,
                table.accuracy[shown],
                width=width * 0.6,
                align="edge",
                color=colour,
                label=f"{kind}: ECE {ece:.4f}",
            )
        ax.plot([0, 1], [0, 1], color="black", linewidth=0.8, linestyle="--")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (15 bins)")
        ax.set_ylabel("accuracy in the bin")
        ax.set_title(SET_TITLES.get(name, name), fontsize=10)
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(f"Reliability before and after the temperature T = {temperature:.3f}")
    fig.tight_layout()
    fig.savefig(target, dpi=100)
    plt.close(fig)
