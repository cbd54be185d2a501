"""REST throughput and latency of the gateway, beside the raw LiteRT ceiling, in one run.

    python benchmarks/rest_benchmark.py --model-dir models --seconds 8 > docs/rest-benchmark.md

Starts ``mnist-serve`` (LiteRT, then ``--runtime savedmodel``) on a free loopback port, drives
it with ``benchmarks/loadgen.py`` (closed loop, keep-alive connections) and prints a markdown
table plus the raw JSON. The machine and versions are printed with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from loadgen import run_load

ROOT = Path(__file__).resolve().parents[1]


def raw_ceiling(model_dir: Path, seconds: float) -> dict[str, float]:
    """Images/s of the LiteRT interpreter alone: batches of 256 and of 1."""
    from ai_edge_litert.interpreter import Interpreter

    version = max(
        (p for p in (model_dir / "mnist").iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
    )
    runner = Interpreter(
        model_path=str(version / "model.tflite"), num_threads=2
    ).get_signature_runner("serving_default")
    out = {}
    for batch in (256, 1):
        x = np.random.default_rng(0).random((batch, 28, 28, 1), dtype=np.float32)
        runner(images=x)
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            runner(images=x)
            n += batch
        out[f"batch_{batch}_images_per_s"] = round(n / (time.perf_counter() - started), 1)
    return out


def start(
    model_dir: Path, *flags: str, code: Path | None = None
) -> tuple[subprocess.Popen[bytes], str, str, float]:
    """Start mnist-serve on free ports: (process, REST URL, gRPC host:port, seconds to ready).

    ``code``: a source tree whose ``serving`` and ``client`` packages to run instead of the
    installed ones (another revision, for a side-by-side comparison)."""
    log = Path(tempfile.mkstemp(suffix=".log")[1])
    started = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mnist_serving.cli", "--model-dir", str(model_dir), "--host",
             "127.0.0.1", "--rest-port", "0", "--grpc-port", "0", "--log-level", "warning", *flags],
            stdout=out, stderr=subprocess.STDOUT, env=_pythonpath(code),
        )  # fmt: skip
    while proc.poll() is None:
        m = re.search(r"ready on (http://\S+), gRPC (\S+)", log.read_text())
        if m:
            return proc, m.group(1), m.group(2), time.perf_counter() - started
        time.sleep(0.05)
    raise SystemExit(log.read_text())


def _pythonpath(code: Path | None) -> dict[str, str] | None:
    if code is None:
        return None
    return dict(os.environ, PYTHONPATH=f"{code / 'serving'}{os.pathsep}{code / 'client'}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def scenarios(digits: np.ndarray) -> list[tuple[str, str, bytes, str, int, list[int]]]:
    one = (digits[:1].astype(np.float32) / 255)[..., None]
    many = (digits[:256].astype(np.float32) / 255)[..., None]
    predict = "/v1/models/mnist:predict"
    classify = "/v1/digits:classify"
    return [
        ("predict JSON, 1 image", predict, json.dumps({"instances": one.tolist()}).encode(), "application/json", 1, [1, 8, 32, 64]),
        ("predict JSON, 256 images", predict, json.dumps({"instances": many.tolist()}).encode(), "application/json", 256, [2]),
        ("digits octet-stream, 1 image", classify, digits[:1].tobytes(), "application/octet-stream", 1, [1, 8, 32, 64]),
        ("digits octet-stream, 256 images", classify, digits[:256].tobytes(), "application/octet-stream", 256, [2]),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mnist.npz")
    parser.add_argument("--seconds", type=float, default=8)
    args = parser.parse_args()
    source = args.data if args.data.exists() else ROOT / "tests" / "fixtures" / "mnist-small.npz"
    with np.load(source) as d:
        digits = d["x_test"][:256]
    rows = []
    ceiling = raw_ceiling(args.model_dir, args.seconds / 2)
    for runtime in ("litert", "savedmodel"):
        proc, url, _grpc, ready_s = start(args.model_dir, "--runtime", runtime)
        try:
            for name, path, body, ctype, per, levels in scenarios(digits):
                asyncio.run(run_load(url + path, body, ctype, 4, 1))  # warm the connections
                for c in levels:
                    res = asyncio.run(run_load(url + path, body, ctype, c, args.seconds))
                    rows.append({"runtime": runtime, "scenario": name, **res.summary(per)})
            peak = rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait()
        rows.append(
            {
                "runtime": runtime,
                "scenario": "server",
                "ready_s": round(ready_s, 2),
                "peak_rss_mb": round(peak, 1),
            }
        )

    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
          f"{args.seconds:.0f} s per point, load generator on the same machine\n")  # fmt: skip
    print(f"raw LiteRT ceiling (same run): {ceiling['batch_256_images_per_s']:,.0f} images/s in "
          f"batches of 256, {ceiling['batch_1_images_per_s']:,.0f} images/s one at a time\n")  # fmt: skip
    print(
        "| runtime | request | concurrency | req/s | images/s | p50 ms | p95 ms | p99 ms | errors |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if r["scenario"] == "server":
            continue
        print(f"| {r['runtime']} | {r['scenario']} | {r['concurrency']} | {r['rps']:,} | {r['images_per_s']:,} | "
              f"{r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['errors']} |")  # fmt: skip
    print()
    for r in rows:
        if r["scenario"] == "server":
            print(f"- {r['runtime']}: ready in {r['ready_s']} s, peak RSS {r['peak_rss_mb']} MB")
    print("\n```json\n" + json.dumps({"ceiling": ceiling, "rows": rows}, indent=1) + "\n```")


if __name__ == "__main__":
    main()
