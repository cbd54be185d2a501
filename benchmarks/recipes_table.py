"""The recipes table of docs/training.md, from the model cards of finished runs.

    for s in 42 1 2; do mnist-train --data ../shared/data/mnist.npz --seed $s \\
        --model-dir runs/robust-$s --no-plots; done
    for s in 1 2 3 4 5; do mnist-train --recipe seed --data ../shared/data/mnist.npz \\
        --seed $s --model-dir runs/seed-$s --no-plots; done
    python -m benchmarks.recipes_table runs/*/mnist/1

Each card holds the recipe, the seed, the MNIST test accuracy, the other writers' and photo
accuracy (measured by the job through the digits API's preprocessing) and the job's wall time.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path


def row(card: dict) -> dict:
    evaluations = card.get("evaluations", {})
    return {
        "recipe": card["recipe"]["name"],
        "seed": card["hyperparameters"]["seed"],
        "mnist": card["test"]["accuracy"],
        "others": evaluations.get("other_writers"),
        "photos": evaluations.get("photos"),
        "train_s": card["training_seconds"],
        "job_s": card.get("job_seconds"),
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| recipe | seed | MNIST test | other writers (UCI) | photo-like MNIST | training | whole job |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r["recipe"], r["seed"])):
        lines.append(
            f"| {r['recipe']} | {r['seed']} | {r['mnist']:.4f} | {_pct(r['others'])} | "
            f"{_pct(r['photos'])} | {r['train_s']:.0f} s | {_secs(r['job_s'])} |"
        )
    for recipe in sorted({r["recipe"] for r in rows}):
        mine = [r for r in rows if r["recipe"] == recipe]
        mnist = [r["mnist"] for r in mine]
        others = [r["others"] for r in mine if r["others"] is not None]
        photos = [r["photos"] for r in mine if r["photos"] is not None]
        lines.append(
            f"| **{recipe}: mean of {len(mine)}** | | **{statistics.mean(mnist):.4f}** "
            f"(min {min(mnist):.4f}) | {_pct(_mean(others))} | {_pct(_mean(photos))} | | |"
        )
    return "\n".join(lines)


def _mean(values: list[float]) -> float | None:
    return statistics.mean(values) if values else None


def _pct(value: float | None) -> str:
    """Rounded down, so a figure never reads as reaching a target it misses (96.995 → 96.99)."""
    return "–" if value is None else f"{math.floor(value * 10_000) / 100:.2f} %"


def _secs(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("versions", nargs="+", type=Path, help="version folders with a model card")
    args = parser.parse_args()
    rows = [row(json.loads((v / "model_card.json").read_text())) for v in args.versions]
    print(table(rows))


if __name__ == "__main__":
    main()
