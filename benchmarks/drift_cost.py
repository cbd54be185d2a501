"""What the drift window costs per served image, beside the model's own cost, in one run: the
gateway's :meth:`InputWindow.observe` (one matrix product and one sum of squares over the
batch, then the ring's write) per model call, at the batch sizes a gateway forms, and the
version's LiteRT files (int8 and fp32, one thread) on the same batches; then the int8 model
and the window together, call after call (what a thread pool left spinning by one would cost
the other shows there); and the window when calls share a write, as on a busy event loop
(the window writes what came in over 50 ms at once). CPU time of the whole process per image.

    python -m benchmarks.drift_cost models/mnist/1 --data ../shared/data/mnist.npz
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.support import ROOT
from mnist_serving.observability.input_window import InputWindow
from mnist_serving.runtimes.litert import LiteRTRuntime

BATCHES = (1, 8, 64, 256)
SHARED = 32  # calls one write serves: 640 model calls/s, 50 ms apart


def cpu_per_call(call: Callable[[], object], seconds: float) -> float:
    """CPU seconds per call of ``call``, over about ``seconds`` of repeated calls."""
    call()
    calls, started, wall = 0, time.process_time(), time.perf_counter()
    while time.perf_counter() - wall < seconds:
        call()
        calls += 1
    return (time.process_time() - started) / calls


def buffered_cpu(
    window: InputWindow, batch: np.ndarray, probs: np.ndarray, calls: int, seconds: float
) -> float:
    """CPU seconds per call when ``calls`` calls share one write, as on a busy event loop
    (the window writes what came in over 50 ms at once)."""

    async def run() -> float:
        made, started, wall = 0, time.process_time(), time.perf_counter()
        while time.perf_counter() - wall < seconds:
            for _ in range(calls):
                window.observe(batch, probs)
            window.flush()
            made += calls
        return (time.process_time() - started) / made

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version_dir", type=Path)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mnist.npz")
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    with np.load(args.data) as data:
        images = (data["x_test"][:256].astype(np.float32) / 255.0)[..., None]
    window = InputWindow()
    sessions = {
        p: LiteRTRuntime(args.version_dir, threads=1, precision=p).session()
        for p in ("int8", "fp32")
    }
    print(
        "| images per model call | drift window µs/image | model int8 µs/image | "
        "model fp32 µs/image | int8 model + window µs/image | added to the int8 model | "
        f"window, {SHARED} calls a write µs/image |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in BATCHES:
        batch = images[:n]
        probs = np.asarray(sessions["fp32"](batch))
        observe = cpu_per_call(lambda b=batch, p=probs: window.observe(b, p), args.seconds) / n
        model = {
            p: cpu_per_call(lambda s=s, b=batch: s(b), args.seconds) / n
            for p, s in sessions.items()
        }
        both = cpu_per_call(
            lambda b=batch, p=probs, m=sessions["int8"]: (m(b), window.observe(b, p)),
            args.seconds,
        )
        both /= n
        shared = buffered_cpu(window, batch, probs, SHARED, args.seconds) / n
        print(
            f"| {n} | {observe * 1e6:.2f} | {model['int8'] * 1e6:.2f} | "
            f"{model['fp32'] * 1e6:.2f} | {both * 1e6:.2f} | {both / model['int8'] - 1:+.0%} | "
            f"{shared * 1e6:.2f} |"
        )


if __name__ == "__main__":
    main()
