"""gRPC beside REST, and the latency the gateway adds in front of a backend (chain B → A).

    python benchmarks/grpc_benchmark.py --model-dir models --seconds 6 > docs/grpc-benchmark.md

A is ``mnist-serve`` with the embedded LiteRT runtime; B is ``mnist-serve --backend tfserving``
forwarding to A's gRPC port, standing in for TF Serving (the same wire protocol). Points are
run in alternating order (A, B, A, B ...) so drift on this shared machine hits both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "client"))
from loadgen import run_grpc_load, run_load
from rest_benchmark import start

from mnist_client.protos import digits_pb2
from mnist_client.protos import tensorflow_serving_pb2 as tfs
from mnist_client.tensors import array_to_tensor

ROOT = Path(__file__).resolve().parents[1]
CLASSIFY = "/mnist.v1.DigitClassifier/Classify"
PREDICT = "/tensorflow.serving.PredictionService/Predict"


def bodies(digits: np.ndarray) -> dict[str, tuple[str, str, bytes, str, int]]:
    """name → (protocol, path or method, body, content type, images per request)."""

    def classify(frames: np.ndarray) -> bytes:
        request = digits_pb2.ClassifyRequest()
        for f in frames:
            request.images.add(raw=f.tobytes())
        return request.SerializeToString()

    def predict(frames: np.ndarray) -> bytes:
        request = tfs.PredictRequest()
        request.model_spec.name = "mnist"
        request.inputs["images"].CopyFrom(
            array_to_tensor((frames.astype(np.float32) / 255)[..., None])
        )
        return request.SerializeToString()

    one, many = digits[:1], digits[:256]
    return {
        "REST digits octet, 1": ("rest", "/v1/digits:classify", one.tobytes(), "application/octet-stream", 1),
        "gRPC Classify raw, 1": ("grpc", CLASSIFY, classify(one), "", 1),
        "REST digits octet, 256": ("rest", "/v1/digits:classify", many.tobytes(), "application/octet-stream", 256),
        "gRPC Classify raw, 256": ("grpc", CLASSIFY, classify(many), "", 256),
        "gRPC Predict tensor_content, 1": ("grpc", PREDICT, predict(one), "", 1),
        "gRPC Predict tensor_content, 256": ("grpc", PREDICT, predict(many), "", 256),
    }  # fmt: skip


def measure(
    server: tuple[str, str], spec: tuple[str, str, bytes, str, int], c: int, seconds: float
) -> dict:
    url, grpc_target = server
    protocol, path, body, ctype, per = spec
    if protocol == "rest":
        res = asyncio.run(run_load(url + path, body, ctype, c, seconds))
    else:
        res = asyncio.run(run_grpc_load(grpc_target, path, body, c, seconds))
    return res.summary(per)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mnist.npz")
    parser.add_argument("--seconds", type=float, default=6)
    args = parser.parse_args()
    source = args.data if args.data.exists() else ROOT / "tests" / "fixtures" / "mnist-small.npz"
    with np.load(source) as d:
        digits = d["x_test"][:256]
    specs = bodies(digits)

    a_proc, a_url, a_grpc, _ = start(args.model_dir)
    b_proc, b_url, b_grpc, _ = start(
        args.model_dir, "--backend", "tfserving", "--tfserving-targets", a_grpc
    )
    a, b = (a_url, a_grpc), (b_url, b_grpc)
    rows = []
    try:
        for name in specs:  # REST beside gRPC, against A
            levels = [2] if name.endswith("256") else [1, 8, 32, 64]
            for c in levels:
                rows.append(
                    {
                        "table": "protocols",
                        "request": name,
                        **measure(a, specs[name], c, args.seconds),
                    }
                )
        for name in ("REST digits octet, 1", "gRPC Classify raw, 1"):  # the chain
            for c in (1, 8):
                for round_ in range(2):
                    for label, server in (("A alone", a), ("B → A", b)):
                        r = measure(server, specs[name], c, args.seconds / 2)
                        rows.append(
                            {"table": "chain", "request": name, "path": label, "round": round_, **r}
                        )
    finally:
        for proc in (a_proc, b_proc):
            proc.terminate()
            proc.wait()
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
          "load generator on the same machine\n")  # fmt: skip
    print("| request | concurrency | req/s | images/s | p50 ms | p95 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if r["table"] == "protocols":
            print(f"| {r['request']} | {r['concurrency']} | {r['rps']:,} | {r['images_per_s']:,} | "
                  f"{r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['errors']} |")  # fmt: skip
    print("\n| request | concurrency | path | round | req/s | p50 ms | p99 ms | errors |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        if r["table"] == "chain":
            print(f"| {r['request']} | {r['concurrency']} | {r['path']} | {r['round']} | {r['rps']:,} | "
                  f"{r['p50_ms']} | {r['p99_ms']} | {r['errors']} |")  # fmt: skip
    print("\n```json\n" + json.dumps(rows, indent=1) + "\n```")


if __name__ == "__main__":
    main()
