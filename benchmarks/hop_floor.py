"""What one Python gRPC hop costs on this machine, with no model and no gateway logic at all.

    python -m benchmarks.hop_floor --seconds 4 --rounds 5 > benchmarks/results/hop-floor.md

A trivial echo server answers a 3 KB unary call (the size of one MNIST image as a float32
tensor); the same call goes to it directly and through ``bare_grpc_proxy.py`` in its two
forms (``grpc.aio`` on uvloop as the gateway runs, and the synchronous thread-pool server with
a blocking client). The difference is the floor under any Python gateway's added latency.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time

import grpc
import uvloop

from benchmarks.bare_grpc_proxy import _same
from benchmarks.support import start_helper, stop
from tests.helpers.processes import cpu_seconds

METHOD = "/floor.Echo/Call"
BODY = b"\x01" * 3136  # 784 float32 pixels


async def serve_echo() -> None:
    async def echo(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
        return request

    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(echo, _same, _same)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("floor.Echo", {"Call": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"ready on gRPC 127.0.0.1:{port}", flush=True)
    await server.wait_for_termination()


async def sequential_calls(target: str, seconds: float) -> list[float]:
    """Latencies (ms) of back-to-back calls, one in flight (concurrency 1), after a warm-up."""
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(METHOD, request_serializer=_same, response_deserializer=_same)
        for _ in range(200):
            await call(BODY)
        latencies = []
        stop_at = time.perf_counter() + seconds
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            await call(BODY)
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    echo, echo_target = start_helper("hop_floor", "--serve-echo")
    aio, aio_target = start_helper("bare_grpc_proxy", echo_target)
    sync, sync_target = start_helper("bare_grpc_proxy", "--sync", echo_target)
    paths = {
        "echo alone": (echo, echo_target),
        "grpc.aio forwarder → echo": (aio, aio_target),
        "sync grpc forwarder → echo": (sync, sync_target),
    }
    points: dict[str, list[tuple[float, float, float]]] = {label: [] for label in paths}
    try:
        for _ in range(args.rounds):
            for label, (proc, target) in paths.items():
                cpu = cpu_seconds(proc.pid)
                ms = asyncio.run(sequential_calls(target, args.seconds))
                cpu_ms = (cpu_seconds(proc.pid) - cpu) * 1000 / (len(ms) + 200)
                ms.sort()
                points[label].append((statistics.median(ms), ms[int(len(ms) * 0.99)], cpu_ms))
                time.sleep(0.2)
    finally:
        for proc, _ in paths.values():
            stop(proc)
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"grpcio {grpc.__version__}; client, forwarder and echo server on the same machine\n"
    )
    print(
        f"Concurrency 1, {args.seconds:g} s per point, median over {args.rounds} alternating rounds:\n"
    )
    print("| path | p50 ms | p99 ms | added at p50 | CPU ms per call of the process called |")
    print("|---|---:|---:|---:|---:|")
    base = statistics.median(p[0] for p in points["echo alone"])
    for label, rounds in points.items():
        p50, p99, cpu = (statistics.median(r[i] for r in rounds) for i in range(3))
        added = "" if label == "echo alone" else f"{p50 - base:+.2f} ms"
        print(f"| {label} | {p50:.2f} | {p99:.2f} | {added} | {cpu:.2f} |")
    print(
        "\nEach round's p50 (ms): "
        + "; ".join(
            f"{label}: {', '.join(f'{r[0]:.2f}' for r in rounds)}"
            for label, rounds in points.items()
        )
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve-echo"]:
        uvloop.install()
        asyncio.run(serve_echo())
    else:
        main()
