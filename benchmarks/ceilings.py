"""What this machine can do at most, measured beside a gateway figure in the same run.

    python -m benchmarks.ceilings --model-dir models --seconds 4

- a bare ASGI app on the gateway's uvicorn settings (httptools, uvloop) answering a constant
  JSON body, driven by wrk: the least any request on this HTTP stack costs;
- a trivial ``grpc.aio`` servicer (it echoes the request) driven by h2load: the same for gRPC;
- raw LiteRT calls at batch 1, 32 and 256 with a given thread count, for the float file and the
  int8 one (when the version has it): the model alone, in images/s and CPU per image.

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
from mnist_contract.layout import TFLITE_FILE, TFLITE_INT8_FILE, model_base, version_dirs
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


LITERT_FILES = {"fp32": TFLITE_FILE, "int8": TFLITE_INT8_FILE}


def raw_litert(
    model_dir: Path,
    threads: int,
    seconds: float,
    precision: str = "fp32",
    batches: tuple[int, ...] = (1, 32, 256),
) -> dict[int, dict[str, float]]:
    """The newest version's LiteRT interpreter alone, by batch size: images/s and CPU µs per
    image (the process's CPU, every interpreter thread's included)."""
    from ai_edge_litert.interpreter import Interpreter

    versions = version_dirs(model_base(model_dir))
    path = versions[max(versions)] / LITERT_FILES[precision]
    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    runner = interpreter.get_signature_runner(SERVING_DEFAULT.name)
    found = {}
    for batch in batches:
        x = np.random.default_rng(0).random((batch, 28, 28, 1), dtype=np.float32)
        runner(images=x)
        n, started, cpu = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - started < seconds:
            runner(images=x)
            n += batch
        wall, used = time.perf_counter() - started, time.process_time() - cpu
        found[batch] = {
            "images_per_s": round(n / wall, 1),
            "cpu_us_per_image": round(used * 1e6 / n, 1),
        }
    return found


def measure(
    model_dir: Path,
    body: bytes,
    headers: dict[str, str],
    grpc_message: bytes,
    threads: int,
    seconds: float,
    connections: int = 32,
    batches: tuple[int, ...] = (1, 32, 256),
) -> dict:
    return {
        "asgi": bare_asgi(body, headers, connections, seconds),
        "grpc": trivial_grpc(grpc_message, connections, seconds),
        "litert": {
            precision: raw_litert(model_dir, threads, seconds / 2, precision, batches)
            for precision in LITERT_FILES
            if _has(model_dir, precision)
        },
        "threads": threads,
        "connections": connections,
    }


def _has(model_dir: Path, precision: str) -> bool:
    versions = version_dirs(model_base(model_dir))
    return bool(versions) and (versions[max(versions)] / LITERT_FILES[precision]).is_file()


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
                f"| raw LiteRT {precision}, batch {b}, {t} thread{'s' if t > 1 else ''} | "
                f"{figure['images_per_s']:,.0f} images/s | {figure['cpu_us_per_image']:,.1f} "
                "CPU per image |"
                for precision, by_batch in lite.items()
                for b, figure in by_batch.items()
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
