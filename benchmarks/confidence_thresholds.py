"""How a model's confidence splits its answers: for each threshold, the share of answers below
it on MNIST's test set, other writers' uploads and photo-like digits, and how many of the
model's mistakes fall below it. The defaults that read the confidence (the sampling threshold,
the low-confidence alert) are set from this table.

    python -m benchmarks.confidence_thresholds models/mnist/1 --data ../shared/data/mnist.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.support import ROOT
from mnist_contract.layout import TFLITE_FILE
from mnist_training.data import load_mnist
from mnist_training.evaluate import robustness
from mnist_training.export import tflite_predict
from mnist_training.fit import scale

THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version_dir", type=Path)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mnist.npz")
    parser.add_argument("--seed", type=int, default=42, help="the renderings' seed")
    args = parser.parse_args()
    model = args.version_dir / TFLITE_FILE
    data = load_mnist(args.data)
    _, answers = robustness(model, data, args.seed)
    answers = {"mnist_test": (tflite_predict(model, scale(data.x_test)), data.y_test), **answers}
    print("| set | answers | mistakes | " + " | ".join(f"below {t}" for t in THRESHOLDS) + " |")
    print("|---|---:|---:|" + "---:|" * len(THRESHOLDS))
    for name, (probs, labels) in answers.items():
        confidence = probs.max(axis=1)
        wrong = probs.argmax(axis=1) != labels
        cells = [
            f"{(confidence < t).mean():.2%} ({int((wrong & (confidence < t)).sum())})"
            for t in THRESHOLDS
        ]
        print(f"| {name} | {len(labels):,} | {int(wrong.sum())} | " + " | ".join(cells) + " |")
    print("\nEach cell: the share of answers below the threshold (the mistakes among them).")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
