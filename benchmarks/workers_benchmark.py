"""One worker process beside two (``mnist-serve --workers 1`` / ``2``), driven by C load
generators (wrk for REST, h2load for gRPC): throughput, p50/p99 and the gateway's CPU time
per request (supervisor and workers together), with both gateways' memory.

    python -m benchmarks.workers_benchmark --model-dir models --seconds 5 --rounds 3 \
        > benchmarks/results/workers-benchmark.md         # also draws docs/workers.png

Both gateways run from the start; every round measures every point on each, alternating, so
the machine's drift hits both alike; the table gives medians over the rounds. The load
generator shares the machine's cores with the gateway: on this 2-core machine two workers and
wrk compete for the same two cores, so the gain shown is a floor (docs/scaling.md reasons
about larger machines).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
from pathlib import Path

from benchmarks.protocols_benchmark import FACES, median_cells, point
from benchmarks.support import ROOT, benchmark_digits, benchmark_parser
from tests.helpers.processes import process_tree, rss_mb, start_gateway, stop_gateway

CHOSEN = (
    "digits REST, octet-stream",
    "TF Serving REST, JSON rows",
    "TF Serving gRPC, tensor_content",
    "V2 REST, binary FP32",
)
SIZES = ((1, 32), (256, 8))  # (images per request, connections)
WORKERS = (1, 2)


def main() -> None:
    parser = benchmark_parser(__doc__, seconds=5, rounds=3)
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "workers.png")
    args = parser.parse_args()
    digits = benchmark_digits(args.data)
    faces = [f for f in FACES if f.name in CHOSEN]
    gateways = {n: start_gateway(args.model_dir, workers=str(n)) for n in WORKERS}
    rows: list[dict] = []
    memory: dict[int, float] = {}
    try:
        for round_ in range(args.rounds):
            for images, connections in SIZES:
                for face in faces:
                    if images > 1 and face.transport == "grpc":
                        continue
                    for n, gateway in gateways.items():
                        r = point(face, digits[:images], connections, args.seconds, gateway)
                        rows.append(
                            {
                                "workers": n,
                                "face": face.name,
                                "images": images,
                                "connections": connections,
                                "round": round_,
                                **r,
                            }
                        )
        for n, gateway in gateways.items():
            memory[n] = sum(rss_mb(pid) for pid in process_tree(gateway.process.pid))
    finally:
        for gateway in gateways.values():
            stop_gateway(gateway)
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}; wrk -t2 / h2load -t1 on the same cores; gateway "
        f"defaults but --workers; median of {args.rounds} rounds of {args.seconds:g} s\n"
    )
    print(
        "| request | images | conn. | workers | req/s | images/s | p50 ms | p99 ms | "
        "gateway CPU µs/request | errors |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for images, connections in SIZES:
        for face in faces:
            for n in WORKERS:
                points = [
                    r
                    for r in rows
                    if r["face"] == face.name and r["images"] == images and r["workers"] == n
                ]
                if points:
                    print(
                        f"| {face.name} | {images} | {connections} | {n} | {median_cells(points)}"
                    )
    print(
        "\nResident memory after the run (all processes of the gateway): "
        + ", ".join(f"{n} worker(s) {mb:.0f} MB" for n, mb in memory.items())
    )
    print("\n```json\n" + json.dumps(rows, indent=1) + "\n```")
    plot(rows, [f.name for f in faces], args.plot)


def plot(rows: list[dict], faces: list[str], target: Path) -> None:
    """Single-image requests/s and p99 for each face, one worker beside two."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (thr, lat) = plt.subplots(1, 2, figsize=(12, 4.4))
    width = 0.38
    for offset, n in ((-width / 2, 1), (width / 2, 2)):
        medians = {
            key: [
                statistics.median(
                    r[key]
                    for r in rows
                    if r["face"] == face and r["images"] == 1 and r["workers"] == n
                )
                for face in faces
            ]
            for key in ("rps", "p99_ms")
        }
        xs = [i + offset for i in range(len(faces))]
        thr.bar(xs, medians["rps"], width, label=f"{n} worker{'s' if n > 1 else ''}")
        lat.bar(xs, medians["p99_ms"], width, label=f"{n} worker{'s' if n > 1 else ''}")
    labels = [face.replace(", ", "\n") for face in faces]
    for ax, title, unit in (
        (thr, "Single-image requests/s (32 connections)", "requests/s"),
        (lat, "p99 latency (32 connections)", "ms"),
    ):
        ax.set_xticks(range(len(faces)), labels, fontsize=8)
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="upper center")
    fig.suptitle(
        "mnist-serve --workers 1 vs 2, 2 cores shared with the load generator", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(target, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
