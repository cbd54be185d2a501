"""Figures for docs/reliability.md: the fault tests run with longer phases and more fuzzing,
plus an overload run with the raw-socket load generator (cheap enough per request that the
gateway, not the generator, is what saturates on a 2-core machine).

    python -m benchmarks.reliability --model-dir models --out benchmarks/results/reliability-figures.json

Everything targets 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.loadgen import run_load
from benchmarks.support import ROOT
from tests.helpers.processes import rss_mb, start_gateway, stop_gateway

FAULT_TESTS = [
    "tests/end_to_end/serving/test_faults.py",
    "tests/end_to_end/serving/test_lifecycle.py::test_a_new_version_swaps_in_under_load_without_a_failed_request",
    "tests/end_to_end/serving/test_fuzz.py",
]


def run_fault_tests(out: Path, phase: float, examples: int) -> None:
    env = {
        **os.environ,
        "MNIST_FIGURES_FILE": str(out),
        "MNIST_FAULT_PHASE_SECONDS": str(phase),
        "MNIST_FUZZ_EXAMPLES": str(examples),
    }
    print(f"fault tests ({phase:g} s phases, {examples} fuzz examples per property) …", flush=True)
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *FAULT_TESTS],
        cwd=ROOT,
        env=env,
        check=True,
    )


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1) if values else float("nan")


def overload(model_dir: Path, seconds: float) -> dict[str, object]:
    """Calm (2 callers) then floods of 32 and 128 callers, each sending 32 images per request
    and re-sending at once on a refusal (the worst client: it ignores Retry-After)."""
    with np.load(ROOT / "tests/fixtures/mnist-small.npz") as data:
        body = data["x_test"][:32].tobytes()
    results: dict[str, object] = {}
    for cap in (4, 0):
        server = start_gateway(
            model_dir,
            "--max-batch-size",
            "32",
            "--max-enqueued-batches",
            "2",
            "--max-images-per-request",
            "32",
            "--max-in-flight-requests",
            str(cap),
        )
        proc, url = server.process, server.url
        try:
            rows = []
            rss_start = rss_mb(proc.pid)
            for callers in (2, 32, 128):
                r = asyncio.run(
                    run_load(
                        f"{url}/v1/digits:classify",
                        body,
                        "application/octet-stream",
                        callers,
                        seconds,
                    )
                )
                rows.append(
                    {
                        "callers": callers,
                        "accepted_per_s": round(len(r.latencies_ms) / r.seconds, 1),
                        "refused_per_s": round(len(r.refused_ms) / r.seconds, 1),
                        "accepted_p50_ms": pct(r.latencies_ms, 50),
                        "accepted_p99_ms": pct(r.latencies_ms, 99),
                        "refused_p50_ms": pct(r.refused_ms, 50),
                        "refused_p99_ms": pct(r.refused_ms, 99),
                    }
                )
                print(f"  cap {cap}: {rows[-1]}", flush=True)
            results[f"in_flight_cap_{cap}"] = {
                "rows": rows,
                "rss_mb_start": round(rss_start, 1),
                "rss_mb_end": round(rss_mb(proc.pid), 1),
            }
        finally:
            stop_gateway(server, timeout=30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks/results/reliability-figures.json"
    )
    parser.add_argument("--phase-seconds", type=float, default=4.0)
    parser.add_argument("--fuzz-examples", type=int, default=1500)
    parser.add_argument("--overload-seconds", type=float, default=6.0)
    args = parser.parse_args()
    args.out.unlink(missing_ok=True)
    started = time.monotonic()
    run_fault_tests(args.out.resolve(), args.phase_seconds, args.fuzz_examples)
    figures = json.loads(args.out.read_text())
    print("overload …", flush=True)
    figures["overload"] = overload(args.model_dir, args.overload_seconds)
    figures["machine"] = {
        "cpus": os.cpu_count(),
        "minutes": round((time.monotonic() - started) / 60, 1),
    }
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
