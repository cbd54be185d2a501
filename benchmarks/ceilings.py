"""What this machine can do at most, measured beside a gateway figure in the same run.

    python -m benchmarks.ceilings --model-dir models --seconds 4

- a bare ASGI app on the gateway's uvicorn settings (httptools, uvloop) answering a constant
  JSON body, driven by wrk: the least any request on this HTTP stack costs;
- a trivial ``grpc.aio`` servicer (it echoes the request) driven by h2load: the same for gRPC;
- raw LiteRT calls at batch 1, 32 and 256 with a given thread count: the model alone.

``python -m benchmarks.ceilings --serve-asgi PORT STATUS`` is the bare app itself.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.cload import h2load_grpc, wrk_post
from benchmarks.support import ROOT, start_helper, stop
from mnist_contract.layout import TFLITE_FILE, model_base, version_dirs
from mnist_contract.model import SERVING_DEFAULT
from tests.helpers.processes import cpu_seconds, free_port

ECHO_METHOD = "/floor.Echo/Call"  # benchmarks.hop_floor's echo servicer


def serve_asgi(port: int, status: int) -> None:
    import uvicorn

    body = b'{"answer": "constant"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if status == 503:
        headers.append((b"retry-after", b"1"))

    async def app(scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        http="httptools",
        loop="uvloop",
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


def start_bare_asgi(status: int = 200) -> tuple[subprocess.Popen[bytes], str]:
    """The bare app on a free port: (process, base URL), once it answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.ceilings", "--serve-asgi", str(port), str(status)],
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            import urllib.request

            urllib.request.urlopen(url, timeout=1)
            return process, url
        except OSError as exc:  # connection refused until it listens; an HTTPError answers
            if hasattr(exc, "code"):
                return process, url
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the bare ASGI app did not start")


def _with_cpu(pid: int, run) -> dict:
    cpu = cpu_seconds(pid)
    result = run()
    used = cpu_seconds(pid) - cpu
    result["cpu_us_per_request"] = round(used * 1e6 / max(result["requests"], 1))
    return result


def bare_asgi(body: bytes, headers: dict[str, str], connections: int, seconds: float) -> dict:
    process, url = start_bare_asgi()
    try:
        return _with_cpu(
            process.pid, lambda: wrk_post(url + "/", body, headers, connections, seconds)
        )
    finally:
        process.terminate()
        process.wait()


def trivial_grpc(message: bytes, connections: int, seconds: float) -> dict:
    process, target = start_helper("hop_floor", "--serve-echo")
    try:
        return _with_cpu(
            process.pid, lambda: h2load_grpc(target, ECHO_METHOD, message, connections, seconds)
        )
    finally:
        stop(process)


def raw_litert(model_dir: Path, threads: int, seconds: float) -> dict[int, float]:
    """Images/s of the newest version's LiteRT interpreter alone, by batch size."""
    from ai_edge_litert.interpreter import Interpreter

    versions = version_dirs(model_base(model_dir))
    interpreter = Interpreter(
        model_path=str(versions[max(versions)] / TFLITE_FILE), num_threads=threads
    )
    runner = interpreter.get_signature_runner(SERVING_DEFAULT.name)
    rates = {}
    for batch in (1, 32, 256):
        x = np.random.default_rng(0).random((batch, 28, 28, 1), dtype=np.float32)
        runner(images=x)
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            runner(images=x)
            n += batch
        rates[batch] = round(n / (time.perf_counter() - started), 1)
    return rates


def measure(
    model_dir: Path,
    body: bytes,
    headers: dict[str, str],
    grpc_message: bytes,
    threads: int,
    seconds: float,
    connections: int = 32,
) -> dict:
    return {
        "asgi": bare_asgi(body, headers, connections, seconds),
        "grpc": trivial_grpc(grpc_message, connections, seconds),
        "litert": raw_litert(model_dir, threads, seconds / 2),
        "threads": threads,
        "connections": connections,
    }


def table(ceilings: dict) -> str:
    a, g, lite = ceilings["asgi"], ceilings["grpc"], ceilings["litert"]
    c, t = ceilings["connections"], ceilings["threads"]
    return "\n".join(
        [
            "| ceiling (same run) | figure | µs |",
            "|---|---:|---:|",
            f"| bare ASGI app, same uvicorn, wrk {c} conn. | {a['rps']:,.0f} req/s | "
            f"{a['cpu_us_per_request']:,} CPU per request |",
            f"| trivial grpc.aio servicer, h2load {c} conn. | {g['rps']:,.0f} req/s | "
            f"{g['cpu_us_per_request']:,} CPU per request |",
            *(
                f"| raw LiteRT, batch {b}, {t} thread{'s' if t > 1 else ''} | {rate:,.0f} images/s "
                f"| {1e6 / rate * b:,.0f} per call |"
                for b, rate in lite.items()
            ),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve-asgi", nargs=2, type=int, metavar=("PORT", "STATUS"))
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4)
    args = parser.parse_args()
    if args.serve_asgi:
        serve_asgi(*args.serve_asgi)
        return
    body = np.zeros(784, np.uint8).tobytes()
    octet = {"Content-Type": "application/octet-stream"}
    message = np.zeros(784, np.float32).tobytes()
    print(table(measure(args.model_dir, body, octet, message, args.threads, args.seconds)))


if __name__ == "__main__":
    main()
