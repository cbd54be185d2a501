"""The C load generators, driven from Python: ``wrk`` for HTTP/1.1, ``h2load`` for gRPC.

Both run for a fixed time against loopback and stop by themselves. Each point comes back as
the same dict (requests, req/s, p50/p99 ms, errors), so tables put REST and gRPC side by side:

    >>> wrk_post("http://127.0.0.1:8080/v2/models/mnist/infer", body, {...}, 32, 6.0)
    {'requests': 14210, 'rps': 2368.3, 'p50_ms': 12.1, 'p99_ms': 31.0, 'errors': 0}

wrk reports latency percentiles itself (a Lua ``done`` hook prints them as JSON). h2load gives
only means, so its per-request log is read for the percentiles. A gRPC error is an HTTP 200
with ``grpc-status`` in the trailers, which h2load cannot see: :func:`h2load_grpc` sends one
call with grpcio first and refuses to measure a request the server would not answer OK.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

import grpc

_WRK_SCRIPT = """
local f = assert(io.open(os.getenv("WRK_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {{"requests": %d, "seconds": %f, "p50_us": %d, "p99_us": %d, "errors": %d, '
    .. '"non_2xx": %d}}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout, e.status))
end
"""


def require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        package = {"wrk": "wrk", "h2load": "nghttp2-client"}[tool]
        raise SystemExit(f"{tool} is not installed (Debian: apt-get install {package})")
    return found


def _point(requests: int, seconds: float, p50_ms: float, p99_ms: float, errors: int) -> dict:
    return {
        "requests": requests,
        "rps": round(requests / seconds, 1),
        "p50_ms": round(p50_ms, 3),
        "p99_ms": round(p99_ms, 3),
        "errors": errors,
    }


def wrk_post(
    url: str, body: bytes, headers: dict[str, str], connections: int, seconds: float
) -> dict:
    """POST ``body`` over ``connections`` keep-alive connections for ``seconds``."""
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    with tempfile.TemporaryDirectory() as tmp:
        script, data = Path(tmp, "post.lua"), Path(tmp, "body")
        script.write_text(_WRK_SCRIPT.format(headers=lines))
        data.write_bytes(body)
        out = subprocess.run(
            # Two threads, or one for a single connection (wrk needs a connection per thread).
            [
                require("wrk"),
                f"-t{min(2, connections)}",
                f"-c{connections}",
                f"-d{seconds:g}s",
                "-s",
                str(script),
                "--timeout",
                "10s",
                url,
            ],
            env={"WRK_BODY_FILE": str(data)},
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        ).stdout
    match = re.search(r"^RESULT (.*)$", out, re.M)
    if match is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    r = json.loads(match.group(1))
    point = _point(r["requests"], r["seconds"], r["p50_us"] / 1000, r["p99_us"] / 1000, r["errors"])
    point["non_2xx"] = r["non_2xx"]  # answered, but not with a success (503s of shedding)
    return point


def grpc_frame(message: bytes) -> bytes:
    """A gRPC message on the wire: uncompressed flag, 4-byte big-endian length, the bytes."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def check_grpc_call(target: str, method: str, message: bytes) -> None:
    """One call with grpcio: the server must answer it OK, or nothing is measured."""
    with grpc.insecure_channel(target) as channel:
        channel.unary_unary(method)(message, timeout=30)  # raises with the status otherwise


def h2load_grpc(target: str, method: str, message: bytes, connections: int, seconds: float) -> dict:
    """Unary gRPC calls of ``method`` with ``message`` over ``connections`` HTTP/2 connections
    (one call in flight on each) for ``seconds``."""
    check_grpc_call(target, method, message)
    with tempfile.TemporaryDirectory() as tmp:
        data, log = Path(tmp, "frame"), Path(tmp, "log")
        data.write_bytes(grpc_frame(message))
        out = subprocess.run(
            [
                require("h2load"),
                f"-c{connections}",
                f"-D{seconds:g}",
                "-m1",
                "-t1",
                "-H",
                "content-type: application/grpc",
                "-H",
                "te: trailers",
                "-d",
                str(data),
                f"--log-file={log}",
                f"http://{target}{method}",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        ).stdout
        rows = [line.split("\t") for line in log.read_text().splitlines() if line]
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    if done is None:
        raise RuntimeError(f"h2load printed no totals:\n{out}")
    micros = sorted(int(r[2]) for r in rows if r[1] == "200")
    errors = int(done.group(1)) - int(done.group(2))
    p50, p99 = (statistics.quantiles(micros, n=100)[i] / 1000 for i in (49, 98))
    return _point(len(micros), seconds, p50, p99, errors)


def h2load_http1_by_status(
    url: str, body: bytes, headers: dict[str, str], connections: int, seconds: float
) -> dict:
    """POST ``body`` over ``connections`` HTTP/1.1 keep-alive connections for ``seconds`` with
    h2load, which logs every answer's status and latency: so successes and refusals get their
    own counts and percentiles (wrk's latency mixes them). Each connection re-sends at once."""
    with tempfile.TemporaryDirectory() as tmp:
        data, log = Path(tmp, "body"), Path(tmp, "log")
        data.write_bytes(body)
        header_flags = [flag for k, v in headers.items() for flag in ("-H", f"{k}: {v}")]
        subprocess.run(
            [
                require("h2load"),
                "--h1",
                f"-c{connections}",
                f"-D{seconds:g}",
                "-m1",
                f"-t{min(2, connections)}",
                *header_flags,
                "-d",
                str(data),
                f"--log-file={log}",
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        )
        rows = [line.split("\t") for line in log.read_text().splitlines() if line]
    by_status: dict[str, list[int]] = {}
    for row in rows:
        by_status.setdefault(row[1], []).append(int(row[2]))
    result: dict = {"seconds": seconds, "statuses": {}}
    for status, micros in sorted(by_status.items()):
        micros.sort()
        quantiles = statistics.quantiles(micros, n=100) if len(micros) > 1 else micros * 99
        result["statuses"][status] = {
            "count": len(micros),
            "per_s": round(len(micros) / seconds, 1),
            "p50_ms": round(quantiles[49] / 1000, 3),
            "p99_ms": round(quantiles[98] / 1000, 3),
        }
    return result
