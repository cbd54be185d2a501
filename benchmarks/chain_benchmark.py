"""What a gateway in front of TF Serving costs: gateway B (``--backend tfserving``) forwarding
to gateway A (embedded LiteRT, standing in for TF Serving: the same gRPC API), with the C load
generators (wrk for REST, h2load for gRPC) and each process's CPU per request.

    python -m benchmarks.chain_benchmark --model-dir models --seconds 4 --rounds 3 \\
        > benchmarks/results/chain-benchmark.md

Paths: A alone; B → A; and for gRPC a forwarder with no logic at all (``bare_grpc_proxy``,
grpc.aio on uvloop) → A, the floor any Python gRPC hop costs here. One worker each, all on
loopback and the same 2 cores. Each round visits every path in turn, so drift hits all alike;
the table gives medians over the rounds. "Added" is the path's p50 minus A alone's p50 in the
same round; "B's CPU" is the forwarding process's CPU per request (B, or the bare proxy).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import dataclass

import numpy as np

from benchmarks.cload import h2load_grpc, wrk_post
from benchmarks.protocols_benchmark import FACES, Face
from benchmarks.support import (
    ROOT,
    benchmark_digits,
    benchmark_parser,
    gateway_spans,
    start_helper,
    stop,
)
from tests.helpers.processes import cpu_seconds, start_gateway, stop_gateway

REQUESTS = ("digits REST, octet-stream", "TF Serving gRPC, tensor_content")
CONNECTIONS = (1, 32)


@dataclass
class Route:
    """One way to reach the model: where the load goes and whose CPU it is charged to."""

    name: str
    rest_url: str  # "" when the path has no REST face
    grpc_target: str
    forwarder_pid: int | None  # None for A alone
    a_pid: int
    spans_url: str = ""  # a gateway forwarder's REST URL: its /metrics time its requests


def run_point(
    route: Route, face: Face, frames: np.ndarray, connections: int, seconds: float
) -> dict:
    body, headers = face.encode(frames)
    pids = [p for p in (route.forwarder_pid, route.a_pid) if p is not None]
    spans = gateway_spans(route.spans_url) if route.spans_url else None
    before = [cpu_seconds(p) for p in pids]
    if face.transport == "rest":
        r = wrk_post(route.rest_url + face.target, body, headers, connections, seconds)
    else:
        r = h2load_grpc(route.grpc_target, face.target, body, connections, seconds)
    used = [cpu_seconds(p) - b for p, b in zip(pids, before, strict=True)]
    per_request = [round(u * 1e6 / max(r["requests"], 1)) for u in used]
    r["forwarder_cpu_us"] = per_request[0] if route.forwarder_pid is not None else None
    r["a_cpu_us"] = per_request[-1]
    if spans is not None:
        after = gateway_spans(route.spans_url)
        t_request, n_request, t_call, n_call = (y - x for x, y in zip(spans, after, strict=True))
        r["span_ms"] = t_request * 1000 / max(n_request, 1)
        r["call_ms"] = t_call * 1000 / max(n_call, 1)
    return r


def main() -> None:
    parser = benchmark_parser(__doc__ or "", seconds=4, rounds=3)
    args = parser.parse_args()
    digits = benchmark_digits(args.data)
    faces = {face.name: face for face in FACES}
    a = start_gateway(args.model_dir)
    b = start_gateway(args.model_dir, "--backend", "tfserving", "--tfserving-targets", a.grpc)
    bare, bare_target = start_helper("bare_grpc_proxy", a.grpc)
    routes = [
        Route("A alone", a.url, a.grpc, None, a.process.pid),
        Route("B → A", b.url, b.grpc, b.process.pid, a.process.pid, spans_url=b.url),
        Route("bare gRPC proxy → A", "", bare_target, bare.pid, a.process.pid),
    ]
    rows: list[dict] = []
    try:
        for round_ in range(args.rounds):
            for name in REQUESTS:
                face = faces[name]
                for connections in CONNECTIONS:
                    turn = routes[round_ % len(routes) :] + routes[: round_ % len(routes)]
                    for route in turn:
                        if face.transport == "rest" and not route.rest_url:
                            continue
                        r = run_point(route, face, digits[:1], connections, args.seconds)
                        rows.append(
                            {
                                "request": name,
                                "connections": connections,
                                "path": route.name,
                                "round": round_,
                                **r,
                            }
                        )
    finally:
        stop_gateway(b)
        stop_gateway(a)
        stop(bare)
    print_table(rows, routes, args)


def print_table(rows: list[dict], routes: list[Route], args) -> None:
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}; load generator, B, A and the proxy on the same machine; "
        f"{args.seconds:g} s per point, {args.rounds} rounds, 1 image per request\n"
    )
    print(
        "| request | conn. | path | req/s | p50 ms | p99 ms | added at p50 | "
        "forwarder CPU µs/request | A's CPU µs/request | errors |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in REQUESTS:
        for connections in CONNECTIONS:
            alone = {
                r["round"]: r["p50_ms"]
                for r in rows
                if r["request"] == name
                and r["connections"] == connections
                and r["path"] == "A alone"
            }
            for route in routes:
                points = [
                    r
                    for r in rows
                    if r["request"] == name
                    and r["connections"] == connections
                    and r["path"] == route.name
                ]
                if not points:
                    continue
                med = {
                    k: statistics.median(r[k] for r in points)
                    for k in ("rps", "p50_ms", "p99_ms", "a_cpu_us")
                }
                added = statistics.median(r["p50_ms"] - alone[r["round"]] for r in points)
                forwarder = (
                    f"{statistics.median(r['forwarder_cpu_us'] for r in points):,.0f}"
                    if route.forwarder_pid is not None
                    else ""
                )
                print(
                    f"| {name} | {connections} | {route.name} | {med['rps']:,.0f} | "
                    f"{med['p50_ms']:.3f} | {med['p99_ms']:.3f} | "
                    f"{'' if route.forwarder_pid is None else f'{added:+.3f} ms'} | {forwarder} | "
                    f"{med['a_cpu_us']:,.0f} | {sum(r['errors'] for r in points)} |"
                )
    print(
        "\nWhere B's time goes, from B's own /metrics over the same points (means: histograms "
        "give sums). B's span is the core's timing of a request, admission to answer; the "
        "backend call is inside it; B's own work is the difference. The rest of the added "
        "time is outside B's Python code: its HTTP or gRPC server, its gRPC client, and "
        "three processes taking turns on two cores.\n"
    )
    print("| request | conn. | B's span ms | backend call ms | B's own work ms |")
    print("|---|---:|---:|---:|---:|")
    for name in REQUESTS:
        for connections in CONNECTIONS:
            points = [
                r
                for r in rows
                if r["request"] == name and "span_ms" in r and r["connections"] == connections
            ]
            span = statistics.median(r["span_ms"] for r in points)
            call = statistics.median(r["call_ms"] for r in points)
            print(f"| {name} | {connections} | {span:.3f} | {call:.3f} | {span - call:.3f} |")
    print(
        f"\n`python -m benchmarks.chain_benchmark --model-dir {args.model_dir} "
        f"--seconds {args.seconds:g} --rounds {args.rounds}` (from {ROOT.name}/)"
    )
    print("\n```json\n" + json.dumps(rows, indent=1) + "\n```")


if __name__ == "__main__":
    main()
