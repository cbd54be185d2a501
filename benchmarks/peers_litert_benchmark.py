"""The serving layer alone: our gateway beside the peers, every one on the same LiteRT file.

    python -m benchmarks.peers_litert_benchmark --model-dir models --seconds 6 --rounds 3 \\
        > benchmarks/results/peers-litert-benchmark.md    # also writes docs/peers-litert.png

Each peer runs in its own virtual environment under ``benchmarks/.venvs/`` (made on first use)
and calls the LiteRT interpreter on the file our gateway serves by default (``--precision``,
int8 unless told), one interpreter thread per worker and a worker per core, with its own
batching where it has one: a competent FastAPI app (``benchmarks/peers/litert/``: uvicorn with
two workers, orjson, no batching), BentoML and MLServer with their adaptive batching, LitServe
and Ray Serve with theirs. Our gateway runs its defaults. Every server gets the same payloads
(TF Serving's JSON rows; the equivalent V2 JSON for MLServer; one extra row sends ours its
binary body) from the same C load generator (wrk), single images at 1, 32 and 256 connections
and 256-image requests at 4. Every round visits every server at every point, the order rotating,
so the host's drift hits all alike; the table gives medians over the rounds. CPU per request is
each server's whole process tree from /proc. The same run measures the floors: a bare ASGI app
on uvicorn and the raw interpreter per image.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from benchmarks import ceilings
from benchmarks.peer_processes import (
    JSON,
    body,
    finish,
    launch,
    measured,
    peer_python,
    probabilities,
    versions,
)
from benchmarks.support import ROOT, benchmark_digits
from mnist_contract.layout import TFLITE_FILE, TFLITE_INT8_FILE, model_base, version_dirs
from tests.helpers.processes import free_port, rss_mb

APPS = Path(__file__).parent / "peers" / "litert"
PREDICT = "/v1/models/mnist:predict"
BASELINE = "FastAPI + LiteRT"
POINTS = ((1, 1), (1, 32), (1, 256), (256, 4))  # (images per request, connections)
OCTET = {"Content-Type": "application/octet-stream"}


@dataclass
class Peer:
    """One server of the comparison: how to install it, start it and ask it."""

    name: str
    packages: list[str]  # empty: ours, in this environment
    command: str  # split on spaces, then {python}, {bin}, {apps}, {port}, ... filled in
    ready_path: str
    predict_path: str = PREDICT
    protocol: str = "v1"  # "v1" (TF Serving rows) or "v2" (Open Inference Protocol JSON)
    env: dict[str, str] = field(default_factory=dict)  # {port2}, {port3} filled in
    process: object = None
    url: str = ""
    ready_s: float = 0.0


def all_peers() -> list[Peer]:
    lite = "ai-edge-litert"
    ours = (
        "{python} -m mnist_serving.cli --model-dir {model_dir} --host 127.0.0.1 --rest-port "
        "{port} --grpc-port -1 --log-level warning --precision {precision}"
    )
    fastapi = (
        "{python} -m uvicorn fastapi_app:app --app-dir {apps} --host 127.0.0.1 --port {port} "
        "--workers 2 --log-level warning --no-access-log"
    )
    bentoml = "{bin}/bentoml serve bentoml_service:Mnist --working-dir {apps} --host 127.0.0.1 "
    mlserver = {
        "MLSERVER_HOST": "127.0.0.1",
        "MLSERVER_HTTP_PORT": "{port}",
        "MLSERVER_GRPC_PORT": "{port2}",
        "MLSERVER_METRICS_PORT": "{port3}",
        "MLSERVER_LOAD_MODELS_AT_STARTUP": "true",
    }
    return [
        Peer("ours", [], ours, "/readyz"),
        Peer(BASELINE, [lite, "fastapi", "uvicorn[standard]", "orjson"], fastapi, "/ready"),
        Peer("BentoML", [lite, "bentoml"], bentoml + "--port {port}", "/readyz", "/predict"),
        Peer(
            "MLServer",
            # uvloop 0.22 refuses asyncio.get_event_loop() outside a running loop, which
            # MLServer 1.7's inference worker calls at start: its pool would die.
            [lite, "mlserver", "uvloop<0.22"],
            "{bin}/mlserver start {apps}/mlserver",
            "/v2/models/mnist/ready",
            "/v2/models/mnist/infer",
            "v2",
            mlserver,
        ),
        Peer("LitServe", [lite, "litserve"], "{python} {apps}/litserve_app.py {port} 1", "/health"),
        Peer(
            "Ray Serve",
            [lite, "ray[serve]", "orjson"],
            "{python} {apps}/ray_serve_app.py {port} 2",
            "/-/healthz",
        ),
    ]


def python_of(peer: Peer) -> Path:
    if not peer.packages:
        return Path(sys.executable)
    name = peer.name.lower().removesuffix(" + litert").replace(" ", "-")
    return peer_python(f"{name}-litert", peer.packages)


def start(peer: Peer, model_file: Path, model_dir: Path, precision: str) -> None:
    python = python_of(peer)
    port, port2, port3 = free_port(), free_port(), free_port()
    fill = {
        "python": str(python),
        "bin": str(python.parent),
        "apps": str(APPS),
        "port": str(port),
        "port2": str(port2),
        "port3": str(port3),
        "model_dir": str(model_dir),
        "precision": precision,
    }
    command = [part.format(**fill) for part in peer.command.split()]
    env = {k: v.format(**fill) for k, v in peer.env.items()}
    env |= {"MODEL_FILE": str(model_file), "RAY_USAGE_STATS_ENABLED": "0"}
    peer.url = f"http://127.0.0.1:{port}"
    log = Path(tempfile.mkstemp(prefix=f"peer-{port}-", suffix=".log")[1])
    peer.process, peer.ready_s = launch(peer.name, command, env, peer.url + peer.ready_path, log)


def answers(peer: Peer, digits: np.ndarray) -> np.ndarray:
    r = httpx.post(
        peer.url + peer.predict_path, content=body(peer.protocol, digits), headers=JSON, timeout=60
    )
    r.raise_for_status()
    return probabilities(peer.protocol, r.json())


def pid(peer: Peer) -> int:
    return peer.process.pid  # type: ignore[attr-defined]


def run_rounds(peers: list[Peer], digits: np.ndarray, rounds: int, seconds: float) -> list[dict]:
    rows = []
    for round_ in range(rounds):
        for turn, (images, connections) in enumerate(POINTS):
            shift = (round_ + turn) % len(peers)
            for peer in peers[shift:] + peers[:shift]:
                payload = body(peer.protocol, digits[:images])
                url = peer.url + peer.predict_path
                measured(pid(peer), url, payload, JSON, images, min(connections, 4), 1)  # warm
                r = measured(pid(peer), url, payload, JSON, images, connections, seconds)
                rows.append({"server": peer.name, "images": images, "conn": connections, **r})
            ours = peers[0]
            if connections == 32 or images > 1:  # ours with its binary body too
                frames = digits[:images].tobytes()
                url = ours.url + "/v1/digits:classify"
                r = measured(pid(ours), url, frames, OCTET, images, connections, seconds)
                rows.append(
                    {"server": "ours, octet-stream", "images": images, "conn": connections, **r}
                )
    return rows


def floors(model_dir: Path, digits: np.ndarray, precision: str, seconds: float) -> dict:
    asgi = ceilings.bare_asgi(body("v1", digits[:1]), JSON, 32, seconds)
    model = ceilings.raw_litert(model_dir, 1, seconds / 2, precision, (1, 32, 256))
    return {"asgi": asgi, "litert": model}


def medians(rows: list[dict]) -> list[dict]:
    grouped: dict[tuple[str, int, int], list[dict]] = {}
    for r in rows:
        grouped.setdefault((r["server"], r["images"], r["conn"]), []).append(r)
    found = []
    for (server, images, conn), points in grouped.items():
        keys = ("ok_rps", "images_per_s", "p50_ms", "p99_ms", "cpu_us_per_request")
        found.append(
            {"server": server, "images": images, "conn": conn}
            | {k: statistics.median(p[k] for p in points) for k in keys}
            | {"errors": sum(p["errors"] for p in points), "rounds": len(points)}
            | {"non_2xx": sum(p["non_2xx"] for p in points)}
        )
    return found


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mnist.npz")
    parser.add_argument("--precision", choices=("int8", "fp32"), default="int8")
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="names of the peers to run (ours always)")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "peers-litert.png")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    folders = version_dirs(model_base(args.model_dir))
    version_dir = folders[max(folders)].resolve()
    model_file = version_dir / (TFLITE_INT8_FILE if args.precision == "int8" else TFLITE_FILE)
    peers = [p for p in all_peers() if not p.packages or not args.only or p.name in args.only]
    digits = benchmark_digits(args.data)
    installed = {p.name: versions(python_of(p), p.packages or ["ai-edge-litert"]) for p in peers}
    try:
        for peer in peers:
            start(peer, model_file, args.model_dir, args.precision)
        theirs = {p.name: answers(p, digits) for p in peers}
        rows = run_rounds(peers, digits, args.rounds, args.seconds)
        memory = {p.name: rss_mb(pid(p), peak=True, children=True) for p in peers}
    finally:
        for peer in peers:
            finish(peer.process)  # type: ignore[arg-type]
    same_run = floors(args.model_dir, digits, args.precision, args.seconds)
    report(peers, installed, theirs, memory, medians(rows), same_run, args)
    plot(medians(rows), args.plot)
    print("\n```json\n" + json.dumps({"rows": rows, "floors": same_run}, indent=1) + "\n```")


def report(peers, installed, theirs, memory, table, same_run, args) -> None:
    ours = theirs["ours"].argmax(1)
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}; model: {args.precision} LiteRT file for every server; "
        f"median of {args.rounds} rounds of {args.seconds:g} s per point; wrk (C) on the same "
        "cores; CPU per request over each server's process tree\n"
    )
    print("| server | versions | ready after | peak RSS | same digit as ours (256 test digits) |")
    print("|---|---|---:|---:|---:|")
    for p in peers:
        same = float((theirs[p.name].argmax(1) == ours).mean())
        print(
            f"| {p.name} | {installed[p.name]} | {p.ready_s:.1f} s | {memory[p.name]:,.0f} MB "
            f"| {same:.3f} |"
        )
    print(
        "\n| images/request | conn. | server | OK req/s | images/s | p50 ms | p99 ms | "
        "CPU µs/req | refused (503) | other errors | ours ÷ this (OK req/s) |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    by_point = {(r["server"], r["images"], r["conn"]): r for r in table}
    for r in sorted(table, key=lambda r: (r["images"], r["conn"], -r["ok_rps"])):
        ours_rps = by_point[("ours", r["images"], r["conn"])]["ok_rps"]
        print(
            f"| {r['images']} | {r['conn']} | {r['server']} | {r['ok_rps']:,.0f} | "
            f"{r['images_per_s']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.1f} | "
            f"{r['cpu_us_per_request']:,.0f} | {r['non_2xx']:,.0f} | "
            f"{r['errors'] - r['non_2xx']:,.0f} | {ours_rps / max(r['ok_rps'], 0.1):.2f}× |"
        )
    print_floors(same_run)


def print_floors(same_run: dict) -> None:
    a = same_run["asgi"]
    print("\nThe floors, same run, after the rounds:\n")
    print("| floor | figure | CPU |\n|---|---:|---:|")
    print(
        f"| bare ASGI app on uvicorn (httptools, uvloop), wrk 32 conn., a 1-image JSON body | "
        f"{a['rps']:,.0f} req/s | {a['cpu_us_per_request']:,} µs per request |"
    )
    for batch, figure in same_run["litert"].items():
        print(
            f"| raw LiteRT, 1 thread, batch {batch} | {figure['images_per_s']:,.0f} images/s | "
            f"{figure['cpu_us_per_image']:.1f} µs per image |"
        )


def plot(table: list[dict], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (rate, cpu) = plt.subplots(1, 2, figsize=(12, 4.4))
    servers = sorted({r["server"] for r in table if r["images"] == 1 and r["conn"] == 1})
    for server in servers:
        single = sorted(
            (r for r in table if r["server"] == server and r["images"] == 1),
            key=lambda r: r["conn"],
        )
        rate.plot([r["conn"] for r in single], [r["ok_rps"] for r in single], "o-", label=server)
    rate.set(
        xscale="log",
        xlabel="concurrent connections",
        ylabel="answered OK per second",
        title="Single images, TF Serving JSON, same LiteRT file",
    )
    rate.grid(alpha=0.3)
    rate.legend(fontsize=8)
    at32 = sorted(
        (r for r in table if r["images"] == 1 and r["conn"] == 32),
        key=lambda r: r["cpu_us_per_request"],
    )
    cpu.barh([r["server"] for r in at32], [r["cpu_us_per_request"] for r in at32])
    cpu.set(
        xscale="log",
        xlabel="CPU µs per request (process tree)",
        title="Cost of one image, 32 conn.",
    )
    cpu.invert_yaxis()
    fig.tight_layout()
    fig.savefig(target, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
