"""What a good candidate looks like against its stable version, so the rollout's gates sit
outside it: two models of the same recipe that differ only by seed, answering the 10,000 MNIST
test digits. Reported: how often they give the same digit (the shadow gate's agreement) and
their mean calibrated confidence (the canary's confidence gate).

    python -m benchmarks.rollout_thresholds --data ../shared/data/mnist.npz --epochs 2
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.support import ROOT
from mnist_contract.pixels import model_input
from mnist_serving.runtimes.litert import LiteRTRuntime


def train(seed: int, data: Path, epochs: int, folder: Path) -> Path:
    flags = f"--recipe seed --epochs {epochs} --seed {seed} --no-plots".split()
    where = ["--data", str(data), "--model-dir", str(folder)]
    subprocess.run(
        [sys.executable, "-m", "mnist_training.cli", *flags, *where],
        check=True,
        cwd=ROOT,
    )
    return folder / "mnist" / "1"


def answers(version: Path, images: np.ndarray) -> np.ndarray:
    runtime = LiteRTRuntime(version, threads=2, precision="fp32")
    session = runtime.session()
    return np.concatenate([session(images[i : i + 256]) for i in range(0, len(images), 256)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/mnist.npz")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs=2, default=(42, 7))
    args = parser.parse_args()
    with np.load(args.data) as data:
        images, labels = model_input(data["x_test"]), data["y_test"]
    with tempfile.TemporaryDirectory() as tmp:
        probs = [
            answers(train(seed, args.data, args.epochs, Path(tmp) / str(seed)), images)
            for seed in args.seeds
        ]
    digits = [p.argmax(1) for p in probs]
    confidence = [float(p.max(1).mean()) for p in probs]
    agreement = float((digits[0] == digits[1]).mean())
    print(f"seeds {args.seeds[0]} and {args.seeds[1]}, the seed recipe, {args.epochs} epochs")
    accuracy = [float((d == labels).mean()) for d in digits]
    print(f"| | seed {args.seeds[0]} | seed {args.seeds[1]} |\n|---|---:|---:|")
    print(f"| accuracy | {accuracy[0]:.4f} | {accuracy[1]:.4f} |")
    print(f"| mean confidence | {confidence[0]:.4f} | {confidence[1]:.4f} |")
    print(f"\nsame digit: {agreement:.4f} ({int((digits[0] != digits[1]).sum())} differ)")
    print(f"confidence difference: {abs(confidence[0] - confidence[1]):.4f}")


if __name__ == "__main__":
    main()
