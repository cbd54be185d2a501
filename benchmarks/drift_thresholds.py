"""How the gateway's drift score reads clean and shifted digits, to set its threshold and
window: clean MNIST test digits streamed in windows (the false alarms), then each shift the
field brings (other writers, inverted images, thick and thin strokes, rotation, scanner noise,
digits off centre): each window's overall and per-feature PSI against the version's drift
reference, the share of windows that raise the alarm at each window size, and the accuracy the
mean confidence estimates against the true one.

    python -m benchmarks.drift_thresholds models/mnist/1 --data ../shared/data/mnist.npz

Each shifted set is made from the test digits (other writers: the UCI digits, drawn as
uploads and read by the digits API's preprocessing), answered by the version's served LiteRT
file (int8 when it has one, as the gateway serves it), and its windows drawn at random.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.support import ROOT
from mnist_contract.drift import REFERENCE_FILE, DriftReference, image_features, raw_moments
from mnist_contract.layout import TFLITE_FILE, TFLITE_INT8_FILE
from mnist_contract.preprocess import decode_image, to_mnist_frame
from mnist_serving.settings import Settings
from mnist_training.data import load_mnist
from mnist_training.evaluate import render_upload, uci_digits
from mnist_training.export import tflite_predict
from mnist_training.fit import scale
from tests.helpers.digit_shifts import SHIFTS

WINDOWS = (100, 200, 500, 1000, 2048)
THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.75)


def shifted_sets(
    test: np.ndarray, labels: np.ndarray, seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every set as model inputs [N, 28, 28] in [0, 1], with its labels."""
    rng = np.random.default_rng(seed)
    half = len(test) // 2  # MNIST's test set: Census employees' digits, then students'
    sets = {
        "clean MNIST test": (test, labels),
        "clean, first half (employees)": (test[:half], labels[:half]),
        "clean, second half (students)": (test[half:], labels[half:]),
    }
    for name, shift in SHIFTS.items():
        sets[name] = (shift(test, rng).astype(np.float32), labels)
    ink, uci_labels = uci_digits()
    frames = np.stack([to_mnist_frame(decode_image(render_upload(d, rng))) for d in ink])
    sets["other writers (UCI)"] = (frames.astype(np.float32) / 255.0, uci_labels)
    return sets


def windows(n: int, size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, n, (count, size))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version_dir", type=Path)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mnist.npz")
    parser.add_argument("--windows", type=int, default=200, help="windows drawn per size")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    reference = DriftReference.from_json(
        json.loads((args.version_dir / REFERENCE_FILE).read_text())
    )
    served = args.version_dir / TFLITE_INT8_FILE
    served = served if served.is_file() else args.version_dir / TFLITE_FILE
    data = load_mnist(args.data)
    test = scale(data.x_test)[..., 0]
    rng = np.random.default_rng(args.seed)
    print(
        f"reference: image features of {reference.images:,} training digits, answers on "
        f"{reference.answers:,} held-out ones; model file {served.name}; {args.windows} "
        "windows per size, drawn at random\n"
    )
    rows = []
    for name, (images, labels) in shifted_sets(test, data.y_test, args.seed).items():
        probs = tflite_predict(served, images[..., None].astype(np.float32))
        features = image_features(raw_moments(images))
        confidence, digit = probs.max(axis=1), probs.argmax(axis=1)
        by_size = {}
        for size in WINDOWS:
            picks = windows(len(images), size, args.windows, rng)
            scores = [reference.scores(features[p], confidence[p], digit[p]) for p in picks]
            by_size[size] = scores
        rows.append((name, probs, labels, confidence, by_size))
    _tables(rows)


def _summary(rows, threshold: float) -> None:
    print(f"## At the default threshold ({threshold}) and window (2,048 images)\n")
    print(
        "| set | median overall score | windows alarmed | smallest window alarmed ≥ 95% | estimated / true accuracy |"
    )
    print("|---|---:|---:|---:|---:|")
    for name, probs, labels, confidence, by_size in rows:
        rates = {w: np.mean([max(s.values()) > threshold for s in by_size[w]]) for w in WINDOWS}
        smallest = next((f"{w:,}" for w in WINDOWS if rates[w] >= 0.95), "none")
        overall = np.median([max(s.values()) for s in by_size[2048]])
        true = (probs.argmax(axis=1) == labels).mean()
        print(
            f"| {name} | {overall:.3f} | {rates[2048]:.1%} | {smallest} | "
            f"{confidence.mean():.3f} / {true:.3f} |"
        )
    print()


def _tables(rows) -> None:
    _summary(rows, Settings.model_fields["drift_threshold"].default)
    print("## The score at a window of 2,048 images (median over windows)\n")
    names = list(rows[0][4][2048][0])
    print("| set | overall | " + " | ".join(names) + " | estimated accuracy | true accuracy |")
    print("|---|---:|" + "---:|" * len(names) + "---:|---:|")
    for name, probs, labels, confidence, by_size in rows:
        scores = by_size[2048]
        overall = np.median([max(s.values()) for s in scores])
        cells = [f"{np.median([s[n] for s in scores]):.3f}" for n in names]
        true = (probs.argmax(axis=1) == labels).mean()
        print(
            f"| {name} | **{overall:.3f}** | "
            + " | ".join(cells)
            + f" | {confidence.mean():.3f} | {true:.3f} |"
        )
    print("\n## Windows that raise the alarm, by window size and threshold\n")
    print("| set | threshold | " + " | ".join(f"{w:,} images" for w in WINDOWS) + " |")
    print("|---|---:|" + "---:|" * len(WINDOWS))
    for name, _p, _l, _c, by_size in rows:
        for threshold in THRESHOLDS:
            cells = [
                f"{np.mean([max(s.values()) > threshold for s in by_size[w]]):.1%}" for w in WINDOWS
            ]
            print(f"| {name} | {threshold} | " + " | ".join(cells) + " |")
    print("\n## Clean windows: the largest overall score seen, by window size\n")
    clean = rows[0][4]
    print("| " + " | ".join(f"{w:,} images" for w in WINDOWS) + " |")
    print("|" + "---:|" * len(WINDOWS))
    print(
        "| " + " | ".join(f"{max(max(s.values()) for s in clean[w]):.3f}" for w in WINDOWS) + " |"
    )


if __name__ == "__main__":
    main()
