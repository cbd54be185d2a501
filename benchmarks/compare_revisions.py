"""A change's effect on the gateway, measured side by side with a base revision in one run,
with the C load generators (wrk for REST, h2load for gRPC) and the gateway's CPU per request.

    python -m benchmarks.compare_revisions --base HEAD~1 --model-dir models --seconds 5 --rounds 3

Exports the base revision's source packages (those of ``SOURCE_FOLDERS`` it has) with ``git
archive`` and starts its gateway beside this working tree's (both LiteRT, one worker each, free
loopback ports). Each round measures every point on both, in alternating order, so the
machine's drift hits both alike; the table gives each point's median over the rounds and the
ratios (this tree / base): above 1 is faster for requests/s, below 1 is cheaper for CPU.
After the rounds, the same run measures the ceilings (:mod:`benchmarks.ceilings`): a bare ASGI
app on the same uvicorn, a trivial grpc.aio servicer, raw LiteRT at batch 1, 32 and 256.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

from benchmarks import ceilings
from benchmarks.protocols_benchmark import FACES, point
from benchmarks.support import ROOT, SOURCE_FOLDERS, benchmark_digits, source_path
from tests.helpers.processes import start_gateway, stop_gateway

POINTS = [  # (face, images per request, connections)
    ("digits REST, octet-stream", 1, 1),  # a lone request: its latency
    ("digits REST, octet-stream", 1, 32),
    ("TF Serving REST, JSON rows", 1, 32),
    ("TF Serving gRPC, tensor_content", 1, 32),
    ("digits REST, octet-stream", 256, 4),
    ("TF Serving REST, JSON rows", 256, 4),
]
MEASURED = ("rps", "p50_ms", "p99_ms", "cpu_us_per_request")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD~1", help="git revision to compare against")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mnist.npz")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    digits = benchmark_digits(args.data)
    faces = {face.name: face for face in FACES}
    base_sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", args.base],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        gateways = {
            f"base {base_sha}": start_gateway(
                args.model_dir, env=source_path(export(args.base, Path(tmp)))
            ),
            "this tree": start_gateway(args.model_dir, env=source_path(ROOT)),
        }
        results: dict[tuple[str, int, int, str], list[dict]] = {}
        try:
            for round_ in range(args.rounds):
                order = list(gateways.items())
                for name, images, connections in POINTS:
                    for label, server in order if round_ % 2 else order[::-1]:
                        r = point(faces[name], digits[:images], connections, args.seconds, server)
                        results.setdefault((name, images, connections, label), []).append(r)
        finally:
            for server in gateways.values():
                stop_gateway(server)
    octet, octet_headers = faces["digits REST, octet-stream"].encode(digits[:1])
    message, _ = faces["TF Serving gRPC, tensor_content"].encode(digits[:1])
    # One worker each, so the model gets both CPUs, as the gateways' LiteRT did.
    limits = ceilings.measure(args.model_dir, octet, octet_headers, message, 2, args.seconds)
    base, this = gateways
    print(
        f"{args.rounds} rounds of {args.seconds:g} s per point, alternating order; medians; "
        "wrk -t2 / h2load -t1 on the same cores\n"
    )
    print(
        f"| request | images | conn. | {base} req/s | {this} req/s | req/s ratio | "
        f"{base} p50 / p99 ms | {this} p50 / p99 ms | {base} CPU µs/req | "
        f"{this} CPU µs/req | CPU ratio | errors |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, images, connections in POINTS:
        b, t = (
            {
                k: statistics.median(p[k] for p in results[(name, images, connections, label)])
                for k in MEASURED
            }
            for label in (base, this)
        )
        errors = sum(
            p["errors"]
            for label in (base, this)
            for p in results[(name, images, connections, label)]
        )
        print(
            f"| {name} | {images} | {connections} | {b['rps']:,.0f} | {t['rps']:,.0f} | "
            f"{t['rps'] / b['rps']:.2f} | {b['p50_ms']:.2f} / {b['p99_ms']:.1f} | "
            f"{t['p50_ms']:.2f} / {t['p99_ms']:.1f} | "
            f"{b['cpu_us_per_request']:,.0f} | {t['cpu_us_per_request']:,.0f} | "
            f"{t['cpu_us_per_request'] / b['cpu_us_per_request']:.2f} | {errors} |"
        )
    print("\nThe ceilings, measured after the rounds in the same run:\n")
    print(ceilings.table(limits))


if __name__ == "__main__":
    main()
