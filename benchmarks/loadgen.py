"""A small closed-loop HTTP/1.1 load generator: N keep-alive connections, each sending one
request after another for a fixed time, every answer's status and latency kept. The
reliability benchmark uses it where it must see each answer while faults happen; throughput
and latency figures come from the C generators (:mod:`benchmarks.cload`), since this one, in
Python on the same cores, saturates near 900 requests/s here, well below the gateway.

    python -m benchmarks.loadgen http://127.0.0.1:8080/v1/digits:classify body.bin \
        --content-type application/octet-stream --concurrency 32 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np


@dataclass
class Result:
    concurrency: int
    seconds: float
    requests: int
    errors: int
    latencies_ms: list[float]  # of 200 answers
    refused_ms: list[float] = field(default_factory=list)  # of every other answer

    def summary(self, images_per_request: int) -> dict[str, float]:
        lat = np.array(self.latencies_ms) if self.latencies_ms else np.array([np.nan])
        rps = self.requests / self.seconds
        return {
            "concurrency": self.concurrency,
            "requests": self.requests,
            "errors": self.errors,
            "rps": round(rps, 1),
            "images_per_s": round(rps * images_per_request, 1),
            "mean_ms": round(float(lat.mean()), 3),
            "p50_ms": round(float(np.percentile(lat, 50)), 3),
            "p95_ms": round(float(np.percentile(lat, 95)), 3),
            "p99_ms": round(float(np.percentile(lat, 99)), 3),
        }


async def _worker(host: str, port: int, request: bytes, stop_at: float, out: Result) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            elapsed = (time.perf_counter() - started) * 1000
            ok = status_line.split(b" ", 2)[1:2] == [b"200"]
            out.requests += 1
            if ok:
                out.latencies_ms.append(elapsed)
            else:
                out.errors += 1
                out.refused_ms.append(elapsed)
    finally:
        writer.close()


async def run_load(
    url: str, body: bytes, content_type: str, concurrency: int, seconds: float
) -> Result:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("loadgen targets loopback only")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    result = Result(concurrency, seconds, 0, 0, [])
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(
        *(_worker(host, port, request, stop_at, result) for _ in range(concurrency))
    )
    result.seconds = time.perf_counter() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("body_file")
    parser.add_argument("--content-type", default="application/json")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--images-per-request", type=int, default=1)
    args = parser.parse_args()
    with open(args.body_file, "rb") as fh:
        body = fh.read()
    result = asyncio.run(
        run_load(args.url, body, args.content_type, args.concurrency, args.seconds)
    )
    print(json.dumps(result.summary(args.images_per_request)))


if __name__ == "__main__":
    main()
