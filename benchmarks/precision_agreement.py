"""What a user of the gateway's default (the int8 LiteRT file) gets against TF Serving's answers
(the SavedModel's), on the whole MNIST test set: the same digit how often, how far apart the
probabilities are, accuracy and calibration of each.

    python -m benchmarks.precision_agreement models/mnist/1 --data ../shared/data/mnist.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.support import ROOT
from mnist_contract.layout import TFLITE_FILE, TFLITE_INT8_FILE
from mnist_training.calibrate import expected_calibration_error
from mnist_training.data import load_mnist
from mnist_training.export import saved_model_predict, tflite_predict
from mnist_training.fit import scale
from mnist_training.quiet import load_tensorflow_quietly


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version_dir", type=Path)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mnist.npz")
    args = parser.parse_args()
    load_tensorflow_quietly()
    data = load_mnist(args.data)
    images, labels = scale(data.x_test), data.y_test
    reference = saved_model_predict(args.version_dir, images)
    answers = {"SavedModel (TF Serving)": reference}
    for name, file in (("LiteRT fp32", TFLITE_FILE), ("LiteRT int8 (default)", TFLITE_INT8_FILE)):
        if (args.version_dir / file).is_file():
            answers[name] = tflite_predict(args.version_dir / file, images)
    print(f"{len(labels):,} MNIST test images, {args.version_dir}\n")
    print(
        "| answers of | accuracy | same digit as TF Serving | max \\|Δp\\| | p99 \\|Δconfidence\\| | ECE |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, probs in answers.items():
        differ = int((probs.argmax(1) != reference.argmax(1)).sum())
        same = 1 - differ / len(labels)
        gap = np.abs(probs.max(1) - reference.max(1))
        print(
            f"| {name} | {(probs.argmax(1) == labels).mean():.4f} | {same:.2%} ({differ} differ) "
            f"| {np.abs(probs - reference).max():.4f} | {np.percentile(gap, 99):.4f} "
            f"| {expected_calibration_error(probs, labels):.4f} |"
        )


if __name__ == "__main__":
    main()
