"""gRPC beside REST on one gateway, with the C load generators (wrk for REST, h2load for gRPC)
and the gateway's CPU per request.

    python -m benchmarks.grpc_benchmark --model-dir models --seconds 4 --rounds 3 \\
        > benchmarks/results/grpc-benchmark.md

One gateway (LiteRT, one worker) answers the same digits as the digits API's octet-stream, the
digits gRPC service's raw bytes, and TF Serving's Predict with ``tensor_content``. Each round
visits every request kind at each concurrency, the kinds in rotating order, so drift on this
shared machine hits all alike; the table gives medians over the rounds. The gateway in front
of a backend is measured by :mod:`benchmarks.chain_benchmark`.
"""

from __future__ import annotations

import os
import platform
import statistics
from dataclasses import replace

import numpy as np

from benchmarks.protocols_benchmark import FACES, Face, point
from benchmarks.support import benchmark_digits, benchmark_parser
from mnist_contract.protos import digits_pb2
from tests.helpers.processes import start_gateway, stop_gateway

CLASSIFY = "/mnist.v1.DigitClassifier/Classify"


def _classify_raw(frames: np.ndarray) -> tuple[bytes, dict[str, str]]:
    request = digits_pb2.ClassifyRequest()
    for frame in frames:
        request.images.add(raw=frame.tobytes())
    return request.SerializeToString(), {}


_BY_NAME = {face.name: face for face in FACES}
KINDS = (  # the protocols benchmark's faces, named as this table compares them
    replace(_BY_NAME["digits REST, octet-stream"], name="REST digits octet-stream"),
    Face("gRPC Classify raw", "grpc", CLASSIFY, _classify_raw),
    replace(_BY_NAME["TF Serving gRPC, tensor_content"], name="gRPC Predict tensor_content"),
)
LEVELS = ((1, (1, 8, 32, 64)), (256, (2,)))  # (images per request, connections)


def main() -> None:
    parser = benchmark_parser(__doc__ or "", seconds=4, rounds=3)
    args = parser.parse_args()
    digits = benchmark_digits(args.data)
    gateway = start_gateway(args.model_dir)
    results: dict[tuple[str, int, int], list[dict]] = {}
    try:
        for round_ in range(args.rounds):
            for images, levels in LEVELS:
                for connections in levels:
                    turn = KINDS[round_ % len(KINDS) :] + KINDS[: round_ % len(KINDS)]
                    for kind in turn:
                        r = point(kind, digits[:images], connections, args.seconds, gateway)
                        results.setdefault((kind.name, images, connections), []).append(r)
    finally:
        stop_gateway(gateway)
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}; one worker; wrk / h2load on the same machine; "
        f"{args.seconds:g} s per point, medians of {args.rounds} rounds\n"
    )
    print(
        "| request | images | conn. | req/s | images/s | p50 ms | p99 ms | CPU µs/request | errors |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for images, levels in LEVELS:
        for connections in levels:
            for kind in KINDS:
                points = results[(kind.name, images, connections)]
                med = {
                    k: statistics.median(r[k] for r in points)
                    for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_request")
                }
                print(
                    f"| {kind.name} | {images} | {connections} | {med['rps']:,.0f} | "
                    f"{med['rps'] * images:,.0f} | {med['p50_ms']:.2f} | {med['p99_ms']:.2f} | "
                    f"{med['cpu_us_per_request']:,.0f} | {sum(r['errors'] for r in points)} |"
                )
    print(
        f"\n`python -m benchmarks.grpc_benchmark --model-dir {args.model_dir} "
        f"--seconds {args.seconds:g} --rounds {args.rounds}`"
    )


if __name__ == "__main__":
    main()
