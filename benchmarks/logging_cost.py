"""What the access log costs: the same gateway with ``--access-log off``, ``text`` and ``json``,
side by side, in alternating rounds, driven by wrk (REST) and h2load (gRPC).

    python -m benchmarks.logging_cost --model-dir models --seconds 5 --rounds 3 \
        > benchmarks/results/logging-cost.md

The gateways' log goes to a file, as a deployment's would go to a collector. The figure to read
is the gateway's CPU per request against ``off``; single-image requests, where the log line is
the largest share of a request's work.
"""

from __future__ import annotations

import json
import os
import platform
import statistics

from benchmarks.cload import h2load_grpc, wrk_post
from benchmarks.protocols_benchmark import INFER, _v2_grpc
from benchmarks.support import (
    benchmark_digits,
    benchmark_parser,
    cpu_seconds,
    start_gateway,
    stop_gateway,
)

STYLES = ("off", "text", "json")


def main() -> None:
    parser = benchmark_parser(__doc__, seconds=5, rounds=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    one = benchmark_digits(args.data, 1)
    octet = {"Content-Type": "application/octet-stream"}
    message, _ = _v2_grpc(one)
    gateways = {style: start_gateway(args.model_dir, "--access-log", style, "--log-level", "info")
                for style in STYLES}  # fmt: skip
    rows = []
    try:
        for round_ in range(args.rounds):
            for face in ("digits REST octet-stream", "V2 gRPC raw"):
                for style, gateway in gateways.items():
                    cpu = cpu_seconds(gateway.process.pid)
                    if face.startswith("digits"):
                        r = wrk_post(gateway.url + "/v1/digits:classify", one.tobytes(), octet,
                                     args.connections, args.seconds)  # fmt: skip
                    else:
                        r = h2load_grpc(
                            gateway.grpc, INFER, message, args.connections, args.seconds
                        )
                    used = cpu_seconds(gateway.process.pid) - cpu
                    r["cpu_us_per_request"] = used * 1e6 / max(r["requests"], 1)
                    rows.append({"face": face, "style": style, "round": round_, **r})
    finally:
        for gateway in gateways.values():
            stop_gateway(gateway)
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
          f"{platform.python_version()}; 1 image per request, {args.connections} connections; "
          f"median of {args.rounds} rounds of {args.seconds:g} s\n")  # fmt: skip
    print("| request | --access-log | req/s | p50 ms | p99 ms | gateway CPU µs/request | vs off | errors |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for face in ("digits REST octet-stream", "V2 gRPC raw"):
        base = None
        for style in STYLES:
            points = [r for r in rows if r["face"] == face and r["style"] == style]
            med = {k: statistics.median(r[k] for r in points)
                   for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_request")}  # fmt: skip
            base = med["cpu_us_per_request"] if base is None else base
            extra = med["cpu_us_per_request"] - base
            print(f"| {face} | {style} | {med['rps']:,.0f} | {med['p50_ms']:.2f} | "
                  f"{med['p99_ms']:.2f} | {med['cpu_us_per_request']:,.0f} | "
                  f"{'' if style == 'off' else f'{extra:+,.0f} µs'} | "
                  f"{sum(r['errors'] for r in points)} |")  # fmt: skip
    print("\n```json\n" + json.dumps(rows, indent=1) + "\n```")


if __name__ == "__main__":
    main()
