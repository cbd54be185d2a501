"""What slow and idle clients take from legitimate traffic, side by side in one run: wrk's
closed loop of one-image requests against a gateway (one worker), alone and then beside a
siege of thousands of connections that drip a header line every 3 s or send nothing, each
reconnecting at once when the gateway closes it (what an attacker would do). Rounds alternate
the two so drift in the host's speed falls on both. Reported: requests/s, p50/p99 of the
legitimate requests, the gateway's CPU per legitimate request, and the slow connections the
gateway closed (it closes each after --header-timeout-seconds, 10 s by default).

    python -m benchmarks.slow_clients --model-dir models --seconds 12 --rounds 3

Everything targets 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import re
import statistics
import time
from pathlib import Path

import httpx
import numpy as np

from benchmarks.cload import wrk_post
from benchmarks.support import ROOT
from tests.helpers.processes import cpu_seconds, start_gateway, stop_gateway

HEAD = b"POST /v1/digits:classify HTTP/1.1\r\nHost: 127.0.0.1\r\n"


async def _one_slow(port: int, drip: bool, stop_at: float) -> None:
    """One slow client: connect, drip (or say nothing), reconnect when closed."""
    while time.monotonic() < stop_at:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        if drip:
            writer.write(HEAD)
        while time.monotonic() < stop_at:
            try:
                if not await asyncio.wait_for(reader.read(4096), 3.0):
                    break  # closed by the gateway: come back
            except TimeoutError:
                if drip:
                    writer.write(b"X-Slow: yes\r\n")
            except OSError:
                break
        writer.close()


def _siege(port: int, dripping: int, idle: int, seconds: float) -> None:
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    stop_at = time.monotonic() + seconds

    async def main() -> None:
        clients = [_one_slow(port, True, stop_at) for _ in range(dripping)]
        clients += [_one_slow(port, False, stop_at) for _ in range(idle)]
        await asyncio.gather(*clients)

    asyncio.run(main())


def _closed(url: str) -> float:
    text = httpx.get(url + "/metrics", timeout=10).text
    found = re.findall(
        r'^mnist_connections_closed_total\{protocol="rest",reason="\w+"\} (\S+)$', text, re.M
    )
    return sum(float(v) for v in found)


def measure(url: str, pid: int, body: bytes, seconds: float) -> dict:
    cpu, closed = cpu_seconds(pid), _closed(url)
    point = wrk_post(
        url + "/v1/digits:classify", body, {"Content-Type": "application/octet-stream"}, 16, seconds
    )
    point["cpu_ms_per_request"] = round((cpu_seconds(pid) - cpu) * 1000 / point["requests"], 4)
    point["slow_connections_closed"] = int(_closed(url) - closed)
    return point


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dripping", type=int, default=2000)
    parser.add_argument("--idle", type=int, default=500)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/slow-clients.json")
    args = parser.parse_args()
    with np.load(ROOT / "tests/fixtures/mnist-small.npz") as data:
        body = data["x_test"][:1].tobytes()
    server = start_gateway(args.model_dir)
    port = int(server.url.rsplit(":", 1)[1])
    runs: dict[str, list[dict]] = {"alone": [], "besieged": []}
    try:
        measure(server.url, server.process.pid, body, 3)  # warm
        for round_ in range(args.rounds):
            runs["alone"].append(measure(server.url, server.process.pid, body, args.seconds))
            siege = multiprocessing.Process(
                target=_siege, args=(port, args.dripping, args.idle, args.seconds + 6)
            )
            siege.start()
            time.sleep(4)  # every slow connection open before the measured run
            runs["besieged"].append(measure(server.url, server.process.pid, body, args.seconds))
            siege.join(60)
            print(f"round {round_ + 1}: {runs['alone'][-1]} | {runs['besieged'][-1]}", flush=True)
    finally:
        stop_gateway(server)
    summary = {
        name: {
            key: statistics.median(p[key] for p in points)
            for key in (
                "rps",
                "p50_ms",
                "p99_ms",
                "cpu_ms_per_request",
                "errors",
                "slow_connections_closed",
            )
        }
        for name, points in runs.items()
    }
    summary["throughput_ratio"] = round(summary["besieged"]["rps"] / summary["alone"]["rps"], 3)
    result = {"slow_connections": args.dripping + args.idle, "runs": runs, "median": summary}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
