"""One worker process beside two (``mnist-serve --workers 1`` / ``2``), driven by C load
generators (wrk for REST, h2load for gRPC): throughput, p50/p99 and the gateway's CPU time
per request (supervisor and workers together), with both gateways' memory.

    python -m benchmarks.workers_benchmark --model-dir models --seconds 5 --rounds 3 \
        > benchmarks/results/workers-benchmark.md

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

from benchmarks.protocols_benchmark import FACES, median_cells, point
from benchmarks.support import (
    benchmark_digits,
    benchmark_parser,
    process_tree,
    rss_mb,
    start_gateway,
    stop_gateway,
)

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
                        rows.append({"workers": n, "face": face.name, "images": images,
                                     "connections": connections, "round": round_, **r})  # fmt: skip
        for n, gateway in gateways.items():
            memory[n] = sum(rss_mb(pid) for pid in process_tree(gateway.process.pid))
    finally:
        for gateway in gateways.values():
            stop_gateway(gateway)
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
          f"{platform.python_version()}; wrk -t2 / h2load -t1 on the same cores; gateway "
          f"defaults but --workers; median of {args.rounds} rounds of {args.seconds:g} s\n")  # fmt: skip
    print("| request | images | conn. | workers | req/s | images/s | p50 ms | p99 ms | "
          "gateway CPU µs/request | errors |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for images, connections in SIZES:
        for face in faces:
            for n in WORKERS:
                points = [r for r in rows if r["face"] == face.name and r["images"] == images
                          and r["workers"] == n]  # fmt: skip
                if points:
                    print(
                        f"| {face.name} | {images} | {connections} | {n} | {median_cells(points)}"
                    )
    print("\nResident memory after the run (all processes of the gateway): "
          + ", ".join(f"{n} worker(s) {mb:.0f} MB" for n, mb in memory.items()))  # fmt: skip
    print("\n```json\n" + json.dumps(rows, indent=1) + "\n```")


if __name__ == "__main__":
    main()
