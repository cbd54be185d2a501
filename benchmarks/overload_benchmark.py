"""Overload: goodput, the admitted requests' latency and the refusals as connections grow far
past what the gateway can serve, this tree beside a base revision, clients that never back off.

    python -m benchmarks.overload_benchmark --base 13d9e51 --model-dir models --seconds 5 \
        --rounds 2 --soak 60 > benchmarks/results/overload-benchmark.md

Both gateways run their defaults (a worker per CPU, metrics, limits, batching on). h2load
(HTTP/1.1, each connection re-sending the moment it has an answer, as wrk does) posts one
octet-stream digit per request and logs every answer, so successes and refusals get their own
rates and percentiles. CPU is the gateway's process tree from /proc. The ceiling in the same
run: a bare ASGI app on the same uvicorn answering every request with a constant 503 (the
least any Python refusal on this stack can cost). The soak holds the largest point for
``--soak`` seconds on this tree and samples its memory.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.ceilings import start_bare_asgi
from benchmarks.cload import h2load_http1_by_status
from benchmarks.compare_revisions import export
from benchmarks.protocols_benchmark import FACES
from benchmarks.support import ROOT, benchmark_digits, benchmark_parser, source_path
from tests.helpers.processes import cpu_seconds, rss_mb, start_gateway, stop_gateway

CONNECTIONS = (8, 32, 256, 1024)


def measure(url: str, pid: int, body: bytes, headers: dict, connections: int, seconds: float):
    cpu = cpu_seconds(pid)
    result = h2load_http1_by_status(url, body, headers, connections, seconds)
    used = cpu_seconds(pid) - cpu
    statuses = result["statuses"]
    ok = statuses.get("200", {"count": 0, "per_s": 0.0, "p50_ms": 0.0, "p99_ms": 0.0})
    refused = statuses.get("503", {"count": 0, "per_s": 0.0, "p50_ms": 0.0, "p99_ms": 0.0})
    answered = sum(s["count"] for s in statuses.values())
    return {
        "ok_per_s": ok["per_s"],
        "ok_p50_ms": ok["p50_ms"],
        "ok_p99_ms": ok["p99_ms"],
        "refused_per_s": refused["per_s"],
        "refused_p50_ms": refused["p50_ms"],
        "other": answered - ok["count"] - refused["count"],
        "cpu_us_per_ok": round(used * 1e6 / max(ok["count"], 1)),
        "cpu_us_per_answer": round(used * 1e6 / max(answered, 1)),
        "rss_mb": round(rss_mb(pid, children=True)),
    }


def bare_refusal_floor(body: bytes, headers: dict, seconds: float) -> dict:
    process, url = start_bare_asgi(503)
    try:
        url += "/v1/digits:classify"
        return {c: measure(url, process.pid, body, headers, c, seconds) for c in (32, 1024)}
    finally:
        process.terminate()
        process.wait()


def soak(gateway, body: bytes, headers: dict, seconds: float) -> list[tuple[int, float]]:
    """RSS every 5 s while the largest point runs for ``seconds`` (h2load in a thread)."""
    url = gateway.url + "/v1/digits:classify"
    load = threading.Thread(
        target=h2load_http1_by_status, args=(url, body, headers, max(CONNECTIONS), seconds)
    )
    load.start()
    samples, started = [], time.monotonic()
    while load.is_alive():
        samples.append(
            (round(time.monotonic() - started), rss_mb(gateway.process.pid, children=True))
        )
        load.join(5)
    return samples


def main() -> None:
    parser = benchmark_parser(__doc__, seconds=5, rounds=2)
    parser.add_argument("--base", default="13d9e51", help="git revision to compare against")
    parser.add_argument("--soak", type=float, default=60, help="seconds at the largest point")
    args = parser.parse_args()
    face = next(f for f in FACES if f.name == "digits REST, octet-stream")
    body, headers = face.encode(benchmark_digits(args.data)[:1])
    base_sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", args.base],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    rows: dict[tuple[str, int], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        gateways = {
            f"base {base_sha}": start_gateway(
                args.model_dir, env=source_path(export(args.base, Path(tmp))), workers=None
            ),
            "this tree": start_gateway(args.model_dir, env=source_path(ROOT), workers=None),
        }
        try:
            for round_ in range(args.rounds):
                order = list(gateways.items())
                for connections in CONNECTIONS:
                    for name, gateway in order if round_ % 2 == 0 else reversed(order):
                        url = gateway.url + face.target
                        point = measure(
                            url, gateway.process.pid, body, headers, connections, args.seconds
                        )
                        rows.setdefault((name, connections), []).append(point)
                        print(name, connections, point, file=sys.stderr, flush=True)
            soaked = soak(gateways["this tree"], body, headers, args.soak) if args.soak else []
        finally:
            for gateway in gateways.values():
                stop_gateway(gateway)
    floor = bare_refusal_floor(body, headers, args.seconds)
    print_report(args, rows, floor, soaked)


def print_report(args, rows, floor, soaked) -> None:
    def med(points: list[dict], key: str) -> float:
        return statistics.median(p[key] for p in points)

    names = sorted({name for name, _ in rows}, key=lambda n: n != "this tree")
    print("# Overload: goodput, admitted latency, refusals\n")
    print(
        f"`python -m benchmarks.overload_benchmark --base {args.base} --seconds "
        f"{args.seconds:g} --rounds {args.rounds} --soak {args.soak:g}`, digits API "
        "octet-stream, 1 image per request, both gateways on their defaults (2 workers on "
        "this 2-core machine), h2load HTTP/1.1 on the same cores, medians of the rounds.\n"
    )
    print(
        "| gateway | connections | OK req/s | of peak | OK p50 ms | OK p99 ms | 503/s | "
        "503 p50 ms | CPU µs per OK | CPU µs per answer | RSS MB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        peak = max(med(rows[(name, c)], "ok_per_s") for c in CONNECTIONS)
        for c in CONNECTIONS:
            p = rows[(name, c)]
            print(
                f"| {name} | {c:,} | {med(p, 'ok_per_s'):,.0f} | "
                f"{med(p, 'ok_per_s') / peak:.0%} | {med(p, 'ok_p50_ms'):.1f} | "
                f"{med(p, 'ok_p99_ms'):.1f} | {med(p, 'refused_per_s'):,.0f} | "
                f"{med(p, 'refused_p50_ms'):.1f} | {med(p, 'cpu_us_per_ok'):,.0f} | "
                f"{med(p, 'cpu_us_per_answer'):,.0f} | {med(p, 'rss_mb'):.0f} |"
            )
    print("\nCeiling, same run: a bare ASGI app on the same uvicorn answering a constant 503")
    print("(one process):\n")
    print("| connections | 503/s | CPU µs per answer |")
    print("|---:|---:|---:|")
    for c, p in floor.items():
        print(f"| {c:,} | {p['refused_per_s']:,.0f} | {p['cpu_us_per_answer']:,.0f} |")
    if soaked:
        print(
            f"\nSoak, this tree, {max(CONNECTIONS):,} connections for {args.soak:g} s, "
            "RSS of all gateway processes (MB) every 5 s:\n"
        )
        print(" ".join(f"{t}s:{mb:.0f}" for t, mb in soaked))


if __name__ == "__main__":
    main()
