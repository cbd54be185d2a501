"""The gateway's sampled inputs (``mnist-serve --sample-dir``) back into training data.

    python -m mnist_training.samples export SAMPLES/ --out to-label/   # PNGs + labels.csv
    (fill in the label column of to-label/labels.csv: 0-9, or leave it empty to skip)
    python -m mnist_training.samples merge to-label/labels.csv --samples SAMPLES/ --out labelled.npz
    mnist-train --data labelled.npz                                      # or mix it in

``export`` writes each sample as a PNG (the 28×28 frame the model saw) and a CSV row with the
model's answer; ``merge`` writes the labelled ones as a Keras-layout ``.npz`` (x_train, y_train,
x_test, y_test), holding out ``--test-fraction`` of them for the test split.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from PIL import Image

COLUMNS = ("png", "shard", "index", "request_id", "predicted", "confidence", "label")


def export(samples: Path, out: Path) -> int:
    """PNGs and ``labels.csv`` for every sample under ``samples``; the number exported."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for shard in sorted(samples.glob("samples-*.npz")):
        with np.load(shard) as data:
            for i, frame in enumerate(data["frames"]):
                png = f"{shard.stem}-{i:04d}.png"
                Image.fromarray(frame).save(out / png)
                rows.append(
                    (
                        png,
                        shard.name,
                        i,
                        str(data["request_id"][i]),
                        int(data["digits"][i]),
                        f"{float(data['confidence'][i]):.4f}",
                        "",
                    )
                )
    with (out / "labels.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return len(rows)


def merge(labels_csv: Path, samples: Path, out: Path, test_fraction: float, seed: int) -> int:
    """The labelled rows of ``labels_csv`` as a Keras-layout npz; the number written."""
    frames, labels = [], []
    shards: dict[str, np.ndarray] = {}
    with labels_csv.open(newline="") as f:
        for number, row in enumerate(csv.DictReader(f), start=2):
            text = (row.get("label") or "").strip()
            if not text:
                continue
            if not (text.isdigit() and 0 <= int(text) <= 9):
                raise SystemExit(f"{labels_csv}:{number}: label must be a digit 0-9, got {text!r}")
            shard = row["shard"]
            if shard not in shards:
                with np.load(samples / shard) as data:
                    shards[shard] = data["frames"]
            frames.append(shards[shard][int(row["index"])])
            labels.append(int(text))
    if len(labels) < 2:
        raise SystemExit(f"{labels_csv}: fewer than 2 labelled samples; fill in the label column")
    order = np.random.default_rng(seed).permutation(len(labels))
    x, y = np.stack(frames)[order], np.array(labels, np.uint8)[order]
    held = max(1, round(len(y) * test_fraction))
    np.savez_compressed(out, x_train=x[held:], y_train=y[held:], x_test=x[:held], y_test=y[:held])
    return len(y)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    jobs = parser.add_subparsers(dest="job", required=True)
    ex = jobs.add_parser("export", help="PNGs and labels.csv for a --sample-dir")
    ex.add_argument("samples", type=Path)
    ex.add_argument("--out", type=Path, required=True)
    mg = jobs.add_parser("merge", help="labelled rows of labels.csv → a Keras-layout npz")
    mg.add_argument("labels", type=Path)
    mg.add_argument("--samples", type=Path, required=True, help="the --sample-dir exported")
    mg.add_argument("--out", type=Path, required=True)
    mg.add_argument("--test-fraction", type=float, default=0.1)
    mg.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.job == "export":
        print(f"exported {export(args.samples, args.out)} samples to {args.out}")
        return 0
    count = merge(args.labels, args.samples, args.out, args.test_fraction, args.seed)
    print(f"wrote {count} labelled samples to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
