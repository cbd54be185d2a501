"""A change's effect on the gateway, measured side by side with a base revision in one run.

    python -m benchmarks.compare_revisions --base HEAD~1 --model-dir models --seconds 4 --rounds 4

Exports the base revision's source packages (those of ``SOURCE_FOLDERS`` it has) with ``git archive`` and
starts its gateway beside this working tree's (both LiteRT, free loopback ports). Each round
measures every point on both, in alternating order, so the machine's drift hits both alike;
the table gives each point's median over the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

from benchmarks.grpc_benchmark import bodies, measure
from benchmarks.support import (
    ROOT,
    SOURCE_FOLDERS,
    benchmark_digits,
    source_path,
    start_gateway,
    stop_gateway,
)

POINTS = [  # (request, concurrency)
    ("REST digits octet, 1", 1), ("REST digits octet, 1", 4), ("REST digits octet, 1", 8),
    ("gRPC Predict tensor_content, 1", 1), ("gRPC Predict tensor_content, 1", 8),
    ("REST digits octet, 256", 2),
]  # fmt: skip


def export(revision: str, into: Path) -> Path:
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-tree", "--name-only", revision],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    folders = [name for name in SOURCE_FOLDERS if name in listed]
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, *folders], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD~1", help="git revision to compare against")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mnist.npz")
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    specs = bodies(benchmark_digits(args.data))
    base_sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.base],
                              check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        gateways = {
            f"base {base_sha}": start_gateway(
                args.model_dir, env=source_path(export(args.base, Path(tmp)))
            ),
            "this tree": start_gateway(args.model_dir, env=source_path(ROOT)),
        }
        results: dict[tuple[str, int, str], list[dict]] = {}
        try:
            for round_ in range(args.rounds):
                order = list(gateways.items())
                for name, c in POINTS:
                    for label, server in order if round_ % 2 else order[::-1]:
                        r = measure((server.url, server.grpc), specs[name], c, args.seconds)
                        results.setdefault((name, c, label), []).append(r)
        finally:
            for server in gateways.values():
                stop_gateway(server)
    base, this = gateways
    print(f"{args.rounds} rounds of {args.seconds:g} s per point, alternating order; medians:\n")
    print(f"| request | conc. | {base} p50 / p99 ms | {this} p50 / p99 ms | p50 ratio | "
          f"{base} images/s | {this} images/s | errors |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, c in POINTS:
        row = {}
        for label in (base, this):
            points = results[(name, c, label)]
            row[label] = [statistics.median(p[k] for p in points)
                          for k in ("p50_ms", "p99_ms", "images_per_s")]  # fmt: skip
        errors = sum(p["errors"] for label in (base, this) for p in results[(name, c, label)])
        (b50, b99, bips), (t50, t99, tips) = row[base], row[this]
        print(f"| {name} | {c} | {b50:.2f} / {b99:.2f} | {t50:.2f} / {t99:.2f} | "
              f"{t50 / b50:.2f} | {bips:,.0f} | {tips:,.0f} | {errors} |")  # fmt: skip


if __name__ == "__main__":
    main()
