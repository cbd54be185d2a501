"""REST throughput and latency of the gateway, beside the raw LiteRT ceiling, in one run.

    python -m benchmarks.rest_benchmark --model-dir models --seconds 8 \
        > benchmarks/results/rest-benchmark.md

Starts ``mnist-serve`` (LiteRT, then ``--runtime savedmodel``; one worker) on a free loopback
port, drives it with wrk (keep-alive connections, each re-sending at once) and prints a
markdown table with the gateway's CPU per request, plus the raw JSON. The machine is printed
with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np

from benchmarks.ceilings import raw_litert
from benchmarks.cload import wrk_post
from benchmarks.support import benchmark_digits
from mnist_contract.pixels import model_input
from tests.helpers.processes import cpu_seconds, rss_mb, start_gateway, stop_gateway

ROOT = Path(__file__).resolve().parents[1]


def raw_ceiling(model_dir: Path, seconds: float, precision: str) -> dict[str, float]:
    """Images/s of the LiteRT interpreter alone (2 threads): batches of 256 and of 1."""
    rates = raw_litert(model_dir, 2, seconds, precision)
    return {f"batch_{batch}_images_per_s": rates[batch]["images_per_s"] for batch in (256, 1)}


def scenarios(digits: np.ndarray) -> list[tuple[str, str, bytes, str, int, list[int]]]:
    one, many = model_input(digits[:1]), model_input(digits[:256])
    predict = "/v1/models/mnist:predict"
    classify = "/v1/digits:classify"
    return [
        (
            "predict JSON, 1 image",
            predict,
            json.dumps({"instances": one.tolist()}).encode(),
            "application/json",
            1,
            [1, 8, 32, 64],
        ),
        (
            "predict JSON, 256 images",
            predict,
            json.dumps({"instances": many.tolist()}).encode(),
            "application/json",
            256,
            [2],
        ),
        (
            "digits octet-stream, 1 image",
            classify,
            digits[:1].tobytes(),
            "application/octet-stream",
            1,
            [1, 8, 32, 64],
        ),
        (
            "digits octet-stream, 256 images",
            classify,
            digits[:256].tobytes(),
            "application/octet-stream",
            256,
            [2],
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mnist.npz")
    parser.add_argument("--seconds", type=float, default=8)
    args = parser.parse_args()
    digits = benchmark_digits(args.data)
    rows = []
    ceiling = {p: raw_ceiling(args.model_dir, args.seconds / 2, p) for p in ("int8", "fp32")}
    for runtime, precision in (("litert", "int8"), ("litert", "fp32"), ("savedmodel", "fp32")):
        server = start_gateway(args.model_dir, "--runtime", runtime, "--precision", precision)
        runtime = f"{runtime} {precision}" if runtime == "litert" else runtime
        url, ready_s = server.url, server.seconds_to_ready
        try:
            for name, path, body, ctype, per, levels in scenarios(digits):
                headers = {"Content-Type": ctype}
                wrk_post(url + path, body, headers, 4, 1)  # warm the connections
                for c in levels:
                    cpu = cpu_seconds(server.process.pid)
                    r = wrk_post(url + path, body, headers, c, args.seconds)
                    used = cpu_seconds(server.process.pid) - cpu
                    r["cpu_us_per_request"] = round(used * 1e6 / max(r["requests"], 1))
                    r["images_per_s"] = round(r["rps"] * per)
                    rows.append({"runtime": runtime, "scenario": name, "concurrency": c, **r})
            peak = rss_mb(server.process.pid, peak=True)
        finally:
            stop_gateway(server)
        rows.append(
            {
                "runtime": runtime,
                "scenario": "server",
                "ready_s": round(ready_s, 2),
                "peak_rss_mb": round(peak, 1),
            }
        )

    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
        f"{args.seconds:.0f} s per point, one worker, wrk on the same machine\n"
    )
    for precision, rates in ceiling.items():
        print(
            f"raw LiteRT {precision} ceiling (same run): {rates['batch_256_images_per_s']:,.0f} "
            f"images/s in batches of 256, {rates['batch_1_images_per_s']:,.0f} one at a time\n"
        )
    print(
        "| runtime | request | concurrency | req/s | images/s | p50 ms | p99 ms | "
        "CPU µs/request | errors |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if r["scenario"] == "server":
            continue
        print(
            f"| {r['runtime']} | {r['scenario']} | {r['concurrency']} | {r['rps']:,} | {r['images_per_s']:,} | "
            f"{r['p50_ms']} | {r['p99_ms']} | {r['cpu_us_per_request']:,} | {r['errors']} |"
        )
    print()
    for r in rows:
        if r["scenario"] == "server":
            print(f"- {r['runtime']}: ready in {r['ready_s']} s, peak RSS {r['peak_rss_mb']} MB")
    print("\n```json\n" + json.dumps({"ceiling": ceiling, "rows": rows}, indent=1) + "\n```")


if __name__ == "__main__":
    main()
