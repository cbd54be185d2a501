"""gRPC beside REST, and the latency the gateway adds in front of a backend (chain B → A).

    python -m benchmarks.grpc_benchmark --model-dir models --seconds 6 \
        > benchmarks/results/grpc-benchmark.md

A is ``mnist-serve`` with the embedded LiteRT runtime; B is ``mnist-serve --backend tfserving``
forwarding to A's gRPC port, standing in for TF Serving (the same wire protocol). Beside them,
``bare_grpc_proxy.py`` forwards the same gRPC calls to A with no logic at all: what it adds is
the floor any Python gRPC hop costs here. Points are run in alternating order (A, B, bare, A,
B, bare ...) over several rounds so drift on this shared machine hits all alike; the summary
gives each path's median p50 over the rounds and what it adds to A alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.request import urlopen

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.loadgen import run_grpc_load, run_load
from benchmarks.support import ROOT, benchmark_digits, cpu_seconds, start_gateway, stop_gateway
from mnist_contract.protos import digits_pb2
from mnist_contract.protos import tensorflow_serving_pb2 as tfs
from mnist_contract.tensors import array_to_tensor

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


def medians(points: list[dict], *keys: str) -> list[float]:
    """Each key's median over the rounds of one point."""
    return [statistics.median(r[key] for r in points) for key in keys]


def gateway_spans(url: str) -> tuple[float, float, float, float]:
    """From a gateway's /metrics: (seconds, count) of its inference requests as the core
    timed them, and (seconds, count) of its model or backend calls."""
    families = {"mnist_request_duration_seconds": 0, "mnist_inference_duration_seconds": 2}
    totals = [0.0, 0.0, 0.0, 0.0]
    for family in text_string_to_metric_families(urlopen(url + "/metrics").read().decode()):
        at = families.get(family.name)
        if at is None:
            continue
        for sample in family.samples:
            if at == 0 and sample.labels.get("route") not in ("predict", "classify"):
                continue
            if sample.name.endswith("_sum"):
                totals[at] += sample.value
            elif sample.name.endswith("_count"):
                totals[at + 1] += sample.value
    return totals[0], totals[1], totals[2], totals[3]


def chain_point(
    proc: subprocess.Popen[bytes],
    server: tuple[str, str],
    spec: tuple[str, str, bytes, str, int],
    c: int,
    seconds: float,
    gateway_url: str | None = None,
) -> dict:
    """One chain point, with the CPU time per request of ``proc`` (the process the load
    generator talks to) and, for a gateway, the spans its /metrics recorded meanwhile."""
    spans = gateway_spans(gateway_url) if gateway_url else None
    cpu = cpu_seconds(proc.pid)
    r = measure(server, spec, c, seconds)
    r["cpu_ms_per_request"] = (cpu_seconds(proc.pid) - cpu) * 1000 / max(r["requests"], 1)
    if gateway_url and spans:
        after = gateway_spans(gateway_url)
        t_req, n_req, t_call, n_call = (y - x for x, y in zip(spans, after, strict=True))
        r["b_request_ms"] = t_req * 1000 / max(n_req, 1)
        r["b_call_ms"] = t_call * 1000 / max(n_call, 1)
        r["b_calls_per_request"] = n_call / max(n_req, 1)
    return r


def start_helper(script: str, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start a helper module of this package (``hop_floor``, ``bare_grpc_proxy``) that prints
    "ready on gRPC HOST:PORT": (process, target)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", f"benchmarks.{script}", *args], stdout=subprocess.PIPE, cwd=ROOT
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    match = re.search(r"ready on gRPC (\S+)", line)
    if match is None:
        proc.kill()
        raise SystemExit(f"{script} {' '.join(args)} did not start: {line!r}")
    return proc, match.group(1)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mnist.npz")
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--rounds", type=int, default=4, help="rounds of the chain comparison")
    args = parser.parse_args()
    digits = benchmark_digits(args.data)
    specs = bodies(digits)

    a = start_gateway(args.model_dir)
    b = start_gateway(args.model_dir, "--backend", "tfserving", "--tfserving-targets", a.grpc)
    b4 = start_gateway(
        args.model_dir, "--backend", "tfserving", "--tfserving-targets", a.grpc,
        "--num-batch-threads", "4",
    )  # fmt: skip
    a_proc, a_url, a_grpc = a.process, a.url, a.grpc
    b_proc, b_url, b_grpc = b.process, b.url, b.grpc
    b4_url, b4_grpc = b4.url, b4.grpc
    bare_proc, bare_grpc = start_helper("bare_grpc_proxy", a_grpc)
    # whose CPU time a path's point is charged to: the process the load generator talks to
    procs = {"A alone": a_proc, "B → A": b_proc, "bare proxy → A": bare_proc}
    paths = {
        "A alone": (a_url, a_grpc),
        "B → A": (b_url, b_grpc),
        "bare proxy → A": ("", bare_grpc),
    }
    rows = []
    try:
        for name in specs:  # REST beside gRPC, against A
            levels = [2] if name.endswith("256") else [1, 8, 32, 64]
            for c in levels:
                rows.append(
                    {
                        "table": "protocols",
                        "request": name,
                        **measure(paths["A alone"], specs[name], c, args.seconds),
                    }
                )
        chain = ("REST digits octet, 1", "gRPC Classify raw, 1", "gRPC Predict tensor_content, 1")
        for name in chain:
            for c in (1, 8):
                for round_ in range(args.rounds):
                    for label, server in paths.items():
                        if label.startswith("bare") and specs[name][0] != "grpc":
                            continue  # the bare proxy speaks gRPC only
                        forwarder = b_url if label == "B → A" else None
                        r = chain_point(
                            procs[label], server, specs[name], c, args.seconds / 2, forwarder
                        )
                        rows.append(
                            {"table": "chain", "request": name, "path": label, "round": round_, **r}
                        )
                        time.sleep(0.2)
        # More forwarded calls in flight at once: smaller batches, more calls.
        threads = {"B, 1 call in flight": paths["B → A"], "B, 4 calls in flight": (b4_url, b4_grpc)}
        for c in (8, 32):
            for round_ in range(args.rounds):
                for label, server in threads.items():
                    r = measure(server, specs["gRPC Classify raw, 1"], c, args.seconds / 2)
                    rows.append({"table": "threads", "path": label, "round": round_, **r})
    finally:
        for gateway in (a, b, b4):
            stop_gateway(gateway)
        stop(bare_proc)
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
          "load generator on the same machine\n")  # fmt: skip
    print("| request | concurrency | req/s | images/s | p50 ms | p95 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if r["table"] == "protocols":
            print(f"| {r['request']} | {r['concurrency']} | {r['rps']:,} | {r['images_per_s']:,} | "
                  f"{r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['errors']} |")  # fmt: skip
    print(
        f"\nChain, median over {args.rounds} rounds (p50 and p99 of each round, then the median):\n"
    )
    print(
        "| request | conc. | path | p50 ms | p99 ms | added at p50 | CPU ms per request | errors |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for name in chain:
        for c in (1, 8):
            base = None
            for label in paths:
                points = [r for r in rows if r["table"] == "chain" and r["request"] == name
                          and r["concurrency"] == c and r["path"] == label]  # fmt: skip
                if not points:
                    continue
                p50, p99, cpu = medians(points, "p50_ms", "p99_ms", "cpu_ms_per_request")
                base = p50 if base is None else base
                added = "" if label == "A alone" else f"{p50 - base:+.2f} ms"
                errors = sum(r["errors"] for r in points)
                print(f"| {name} | {c} | {label} | {p50:.2f} | {p99:.2f} | {added} | {cpu:.2f} | {errors} |")  # fmt: skip
    print(
        "\nWhere B's added time goes at concurrency 1, in means (B's own /metrics give sums, not "
        "percentiles; median over the rounds). B's span is the core's timing of a request, from "
        "its admission to its answer; inside it the backend call, and B's own work is the "
        "difference. The rest of the added time is outside B's Python code: B's gRPC server "
        "and client (or HTTP server for REST) and the machine's two cores shared by three "
        "processes.\n"
    )
    print("| request | A alone mean | B → A mean | added | B's span | backend call | B's own work | outside B's code |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in chain:
        points = [r for r in rows if r["table"] == "chain" and r["request"] == name
                  and r["concurrency"] == 1]  # fmt: skip
        (a_mean,) = medians([r for r in points if r["path"] == "A alone"], "mean_ms")
        b_mean, span, call = medians(
            [r for r in points if r["path"] == "B → A"], "mean_ms", "b_request_ms", "b_call_ms"
        )
        gap, own = b_mean - a_mean, span - call
        print(f"| {name} | {a_mean:.2f} | {b_mean:.2f} | {gap:+.2f} | {span:.2f} | {call:.2f} | "
              f"{own:.2f} | {gap - own:+.2f} |")  # fmt: skip
    print(
        f"\nB with --num-batch-threads 1 and 4, gRPC Classify raw 1 image, median over {args.rounds} rounds:\n"
    )
    print("| concurrency | path | req/s | p50 ms | p99 ms | errors |")
    print("|---:|---|---:|---:|---:|---:|")
    for c in (8, 32):
        for label in threads:
            points = [
                r
                for r in rows
                if r["table"] == "threads" and r["concurrency"] == c and r["path"] == label
            ]
            rps, p50, p99 = medians(points, "rps", "p50_ms", "p99_ms")
            print(
                f"| {c} | {label} | {rps:,.1f} | {p50:.2f} | {p99:.2f} | {sum(r['errors'] for r in points)} |"
            )
    print("\n| request | concurrency | path | round | req/s | p50 ms | p99 ms | errors |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        if r["table"] == "chain":
            print(f"| {r['request']} | {r['concurrency']} | {r['path']} | {r['round']} | {r['rps']:,} | "
                  f"{r['p50_ms']} | {r['p99_ms']} | {r['errors']} |")  # fmt: skip
    print("\n```json\n" + json.dumps(rows, indent=1) + "\n```")


if __name__ == "__main__":
    main()
