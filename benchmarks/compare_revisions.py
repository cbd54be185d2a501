"""A change's effect on the gateway, measured side by side with a base revision in one run,
with the C load generators (wrk for REST, h2load for gRPC), the gateway's CPU per request and
its own work: that CPU minus the same run's floors.

    python -m benchmarks.compare_revisions --base 56921b0 --model-dir models --seconds 5 \\
        --rounds 3 --variant "this tree, fp32=--precision fp32"

Exports the base revision's source packages (those of ``SOURCE_FOLDERS`` it has) with ``git
archive`` and starts its gateway beside this working tree's, each with its defaults (LiteRT,
``--workers`` unless given; every ``--variant LABEL=FLAGS`` adds this tree once more with
those flags). Each round measures every point on every gateway, in alternating order, so the
machine's drift hits all alike; the tables give each point's median over the rounds.

After the rounds the same run measures the floors (:mod:`benchmarks.ceilings`): a bare ASGI
app on the same uvicorn, a trivial grpc.aio servicer, and raw LiteRT per image at the batch
sizes a gateway forms, with the threads each of its workers gives the interpreter. A point's
**own work** is its CPU per request minus the floor of its transport minus the model's CPU for
its images at the mean batch size the gateway formed during that point (from its
``mnist_batch_size`` histogram) and the precision it serves (``mnist_model_info``).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from urllib.request import urlopen

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from benchmarks import ceilings
from benchmarks.protocols_benchmark import FACES, Face, point
from benchmarks.support import ROOT, SOURCE_FOLDERS, benchmark_digits, source_path
from tests.helpers.processes import Server, start_gateway, stop_gateway

POINTS = [  # (face, images per request, connections)
    ("digits REST, octet-stream", 1, 1),  # a lone request: its latency
    ("digits REST, octet-stream", 1, 32),
    ("TF Serving REST, JSON rows", 1, 32),
    ("TF Serving gRPC, tensor_content", 1, 32),
    ("V2 gRPC, raw FP32", 1, 32),
    ("digits gRPC, raw frames", 1, 32),
    ("digits REST, octet-stream", 256, 4),
    ("TF Serving REST, JSON rows", 256, 4),
]
MEASURED = ("rps", "images_per_s", "p50_ms", "p99_ms", "cpu_us_per_request", "mean_batch")
MODEL_BATCHES = (1, 2, 4, 8, 16, 32, 64, 256)


@dataclass(frozen=True)
class Contender:
    """One gateway of the comparison: whose code, with which flags."""

    label: str
    code: Path
    flags: tuple[str, ...] = ()


def export(revision: str, into: Path) -> Path:
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-tree", "--name-only", revision],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    folders = [name for name in SOURCE_FOLDERS if name in listed]
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, *folders], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def _metrics(url: str) -> dict[str, list]:
    text = urlopen(url + "/metrics", timeout=10).read().decode()
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def precision_of(server: Server) -> str:
    """The precision a gateway serves, from ``mnist_model_info`` (float before it had one)."""
    for sample in _metrics(server.url).get("mnist_model_info", []):
        return sample.labels.get("precision", "fp32")
    return "fp32"


def batch_totals(server: Server) -> tuple[float, float]:
    """(images, model calls) the gateway's batcher has formed so far, over all its workers."""
    totals = {"_sum": 0.0, "_count": 0.0}
    for sample in _metrics(server.url).get("mnist_batch_size", []):
        for suffix in totals:
            if sample.name.endswith(suffix):
                totals[suffix] += sample.value
    return totals["_sum"], totals["_count"]


def measure(face: Face, frames: np.ndarray, connections: int, seconds: float, server) -> dict:
    """One point on one gateway, with the mean batch its batcher formed meanwhile."""
    images, calls = batch_totals(server)
    result = point(face, frames, connections, seconds, server)
    images_after, calls_after = batch_totals(server)
    result["mean_batch"] = (images_after - images) / max(calls_after - calls, 1)
    return result


def run_rounds(
    servers: dict[str, Server], digits: np.ndarray, rounds: int, seconds: float
) -> dict[tuple[str, int, int, str], list[dict]]:
    faces = {face.name: face for face in FACES}
    results: dict[tuple[str, int, int, str], list[dict]] = {}
    for round_ in range(rounds):
        order = list(servers.items())
        for name, images, connections in POINTS:
            for label, server in order if round_ % 2 else order[::-1]:
                r = measure(faces[name], digits[:images], connections, seconds, server)
                results.setdefault((name, images, connections, label), []).append(r)
    return results


def model_cpu_per_image(litert: dict, precision: str, batch: float) -> float:
    """Raw LiteRT's CPU per image at the measured batch size nearest ``batch`` (log scale)."""
    by_batch = litert[precision]
    nearest = min(by_batch, key=lambda b: abs(math.log(b) - math.log(max(batch, 1.0))))
    return by_batch[nearest]["cpu_us_per_image"]


def own_work(row: dict, transport: str, images: int, precision: str, floors: dict) -> float:
    floor = floors["asgi" if transport == "rest" else "grpc"]["cpu_us_per_request"]
    model = images * model_cpu_per_image(floors["litert"], precision, row["mean_batch"])
    return row["cpu_us_per_request"] - floor - model


def medians(points: list[dict]) -> dict[str, float]:
    return {k: statistics.median(p[k] for p in points) for k in MEASURED} | {
        "errors": sum(p["errors"] for p in points)
    }


def print_tables(
    results: dict, labels: list[str], precisions: dict[str, str], floors: dict
) -> None:
    transports = {face.name: face.transport for face in FACES}
    base = labels[0]
    print(
        "| request | images | conn. | gateway | precision | req/s | p50 / p99 ms | "
        "CPU µs/req | CPU vs base | mean batch | own work µs/req | errors |"
    )
    print("|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, images, connections in POINTS:
        base_cpu = medians(results[(name, images, connections, base)])["cpu_us_per_request"]
        for label in labels:
            m = medians(results[(name, images, connections, label)])
            work = own_work(m, transports[name], images, precisions[label], floors)
            print(
                f"| {name} | {images} | {connections} | {label} | {precisions[label]} | "
                f"{m['rps']:,.0f} | {m['p50_ms']:.2f} / {m['p99_ms']:.1f} | "
                f"{m['cpu_us_per_request']:,.0f} | {m['cpu_us_per_request'] / base_cpu:.2f} | "
                f"{m['mean_batch']:.1f} | {work:,.0f} | {m['errors']:.0f} |"
            )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD~1", help="git revision to compare against")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mnist.npz")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--workers", default=None, help="MNIST_WORKERS for every gateway (default: theirs)"
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL=FLAGS",
        help='this tree once more with these flags, e.g. "fp32=--precision fp32"',
    )
    return parser.parse_args()


def contenders(args: argparse.Namespace, tmp: Path) -> list[Contender]:
    sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", args.base],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    found = [Contender(f"base {sha}", export(args.base, tmp)), Contender("this tree", ROOT)]
    for variant in args.variant:
        label, _, flags = variant.partition("=")
        found.append(Contender(label, ROOT, tuple(flags.split())))
    return found


def main() -> None:
    args = parse_args()
    digits = benchmark_digits(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        servers: dict[str, Server] = {}
        try:
            for c in contenders(args, Path(tmp)):
                servers[c.label] = start_gateway(
                    args.model_dir, *c.flags, env=source_path(c.code), workers=args.workers
                )
            precisions = {label: precision_of(server) for label, server in servers.items()}
            results = run_rounds(servers, digits, args.rounds, args.seconds)
        finally:
            for server in servers.values():
                stop_gateway(server)
    faces = {face.name: face for face in FACES}
    octet, octet_headers = faces["digits REST, octet-stream"].encode(digits[:1])
    message, _ = faces["TF Serving gRPC, tensor_content"].encode(digits[:1])
    cpus = os.cpu_count() or 1
    workers = cpus if args.workers in (None, "auto") else int(args.workers)
    threads = max(1, cpus // workers)  # as the gateway plans its interpreter threads
    floors = ceilings.measure(
        args.model_dir, octet, octet_headers, message, threads, args.seconds, 32, MODEL_BATCHES
    )
    print(
        f"{args.rounds} rounds of {args.seconds:g} s per point, alternating order; medians; "
        f"workers: {args.workers or 'each gateway its default'}; wrk -t2 / h2load -t1 on the "
        "same cores; CPU summed over each gateway's process tree\n"
    )
    print_tables(results, list(servers), precisions, floors)
    print("\nThe floors, measured after the rounds in the same run:\n")
    print(ceilings.table(floors))


if __name__ == "__main__":
    main()
