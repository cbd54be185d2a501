"""Reading a TF Serving ``{"instances": ...}`` body: the usual path (orjson + numpy) beside
:mod:`mnist_serving.adapters.rest.json_rows`' shortcut, in one process, by body size.

    python -m benchmarks.json_rows_benchmark > benchmarks/results/json-rows-benchmark.md

Bodies are real test digits scaled to [0, 1] as ``json.dumps`` writes them (what the
benchmarks send), plus one of random floats (every value distinct, each written with 16 or 17
digits). Each figure is the median of 7 rounds, the two paths alternating.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.support import ROOT, benchmark_digits
from mnist_serving.adapters.rest import tfserving_codec as rest_codec
from mnist_serving.adapters.rest.json_body import loads


def mean_call_ms(read: Callable[[], object], seconds: float) -> float:
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds or calls == 0:
        read()
        calls += 1
    return (time.perf_counter() - started) * 1000 / calls


def side_by_side_ms(*reads: Callable[[], object], rounds: int = 7) -> list[float]:
    """Each reader's median over ``rounds`` of its mean call time, the readers alternating
    within each round so the machine's drift hits them alike."""
    times: list[list[float]] = [[] for _ in reads]
    for _ in range(rounds):
        for read, out in zip(reads, times, strict=True):
            out.append(mean_call_ms(read, 0.3))
    return [statistics.median(t) for t in times]


def usual(body: bytes) -> np.ndarray:
    return rest_codec.parse_predict(loads(body))[1]["images"]


def shortcut(body: bytes) -> np.ndarray:
    return rest_codec.parse_predict(rest_codec.loads_predict(body))[1]["images"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mnist.npz")
    args = parser.parse_args()
    frames = (benchmark_digits(args.data).astype(np.float32) / 255.0)[..., None]
    bodies = {f"{n} digits": frames[:n] for n in (1, 4, 8, 32, 256)}
    bodies["256 random floats"] = np.random.default_rng(0).random((256, 28, 28, 1))
    print("| body | bytes | usual path ms | loads_predict ms | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, images in bodies.items():
        body = json.dumps({"instances": images.tolist()}).encode()
        assert np.array_equal(usual(body), shortcut(body))
        before, after = side_by_side_ms(lambda b=body: usual(b), lambda b=body: shortcut(b))
        print(f"| {name} | {len(body):,} | {before:.3f} | {after:.3f} | {before / after:.2f}× |")


if __name__ == "__main__":
    main()
