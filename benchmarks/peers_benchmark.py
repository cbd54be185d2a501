"""Side by side on this machine: our gateway, a naive and a competent FastAPI baseline,
KServe, MLServer and BentoML, all driven by wrk with the same payloads.

    python -m benchmarks.peers_benchmark --model-dir models --seconds 6 \\
        > benchmarks/results/peers-benchmark.md       # also writes docs/peers.png

Each peer gets its own virtual environment under ``benchmarks/.venvs/`` (made on first use)
and loads the same trained model the way its users would: the Keras file (``model.keras``)
for the naive app, KServe and MLServer; the SavedModel's serving signature for the competent
FastAPI app and BentoML (with its adaptive batching); the LiteRT flatbuffer for our gateway
(its defaults: a worker per CPU). All servers run at once on loopback; each scenario visits
them in turn (and the order rotates), so drift on this shared machine hits all alike. Same
payloads: TF Serving's ``{"instances": ...}`` JSON for ours, the FastAPI apps, KServe (its V1
protocol) and BentoML, the equivalent V2 JSON for MLServer; one extra row sends ours its
binary body (octet-stream). CPU per request is each server's process tree from /proc.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from benchmarks.cload import wrk_post
from benchmarks.peer_processes import (
    JSON,
    body,
    finish,
    launch,
    peer_python,
    probabilities,
    versions,
)
from benchmarks.peer_processes import measured as wrk_with_cpu
from benchmarks.rest_benchmark import raw_ceiling
from benchmarks.support import ROOT
from mnist_contract.layout import KERAS_FILE, model_base, version_dirs
from tests.helpers.processes import free_port, rss_mb

PEERS_DIR = Path(__file__).parent / "peers"
TF = "tensorflow==2.21.0"


@dataclass
class Peer:
    name: str
    packages: list[str]
    ready_path: str
    predict_path: str
    protocol: str  # "v1" (instances) or "v2" (MLServer's inputs)
    process: subprocess.Popen[bytes] | None = None
    url: str = ""
    ready_s: float = 0.0
    log: Path = field(default_factory=lambda: Path(tempfile.mkstemp(suffix=".log")[1]))


PEERS = [
    Peer("ours", [], "/readyz", "/v1/models/mnist:predict", "v1"),
    Peer("naive FastAPI", [TF, "fastapi", "uvicorn"], "/ready", "/predict", "v1"),
    Peer(
        "FastAPI + signature",
        [TF, "fastapi", "uvicorn[standard]", "orjson"],
        "/ready",
        "/v1/models/mnist:predict",
        "v1",
    ),
    Peer("BentoML", [TF, "bentoml"], "/readyz", "/predict", "v1"),
    Peer("KServe", [TF, "kserve"], "/v1/models/mnist", "/v1/models/mnist:predict", "v1"),
    Peer("MLServer", [TF, "mlserver"], "/v2/models/mnist/ready", "/v2/models/mnist/infer", "v2"),
]


def venv_python(peer: Peer) -> Path:
    if peer.name == "ours":
        return Path(sys.executable)
    return peer_python(re.sub(r"\W+", "-", peer.name.lower()), peer.packages)


def start(peer: Peer, version_dir: Path, model_dir: Path) -> None:
    python = venv_python(peer)
    port = free_port()
    env = {
        **os.environ,
        "MODEL": str(version_dir / KERAS_FILE),
        "SAVEDMODEL": str(version_dir),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    if peer.name == "ours":
        cmd = [
            str(python),
            "-m",
            "mnist_serving.cli",
            "--model-dir",
            str(model_dir),
            "--host",
            "127.0.0.1",
            "--rest-port",
            str(port),
            "--grpc-port",
            "-1",
            "--log-level",
            "warning",
        ]
    elif peer.name == "naive FastAPI":
        cmd = [
            str(python),
            "-m",
            "uvicorn",
            "naive_app:app",
            "--app-dir",
            str(PEERS_DIR),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
    elif peer.name == "FastAPI + signature":
        cmd = [
            str(python),
            "-m",
            "uvicorn",
            "signature_app:app",
            "--app-dir",
            str(PEERS_DIR),
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
    elif peer.name == "BentoML":
        cmd = [
            str(python.parent / "bentoml"),
            "serve",
            "bentoml_service:Mnist",
            "--working-dir",
            str(PEERS_DIR),
            "--port",
            str(port),
        ]
    elif peer.name == "KServe":
        cmd = [str(python), str(PEERS_DIR / "kserve_app.py"), "--http_port", str(port)]
    else:
        env.update(
            {
                "MLSERVER_HTTP_PORT": str(port),
                "MLSERVER_GRPC_PORT": str(free_port()),
                "MLSERVER_METRICS_PORT": str(free_port()),
                "MLSERVER_LOAD_MODELS_AT_STARTUP": "true",
                # MLServer 1.7.1's worker pool dies at start here (uvloop: "no current event
                # loop"); with 0 workers inference runs in its main process, batching still on.
                "MLSERVER_PARALLEL_WORKERS": "0",
            }
        )
        cmd = [str(python.parent / "mlserver"), "start", str(PEERS_DIR / "mlserver")]
    peer.url = f"http://127.0.0.1:{port}"
    peer.process, peer.ready_s = launch(peer.name, cmd, env, peer.url + peer.ready_path, peer.log)


def measured(peer: Peer, path: str, payload: bytes, headers: dict[str, str], *args) -> dict:
    """wrk against one peer (images, connections, seconds as ``peer_processes.measured``)."""
    assert peer.process is not None
    return wrk_with_cpu(peer.process.pid, peer.url + path, payload, headers, *args)


def check_answers(peer: Peer, images: np.ndarray, labels: np.ndarray) -> float:
    r = httpx.post(
        peer.url + peer.predict_path, content=body(peer.protocol, images), headers=JSON, timeout=60
    )
    r.raise_for_status()
    return float((probabilities(peer.protocol, r.json()).argmax(1) == labels).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mnist.npz")
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "peers.png")
    args = parser.parse_args()
    folders = version_dirs(model_base(args.model_dir))
    version_dir = folders[max(folders)].resolve()  # peers may run from another folder
    with np.load(args.data) as d:
        digits, labels = d["x_test"][:256], d["y_test"][:256]
    rows: list[dict] = []
    installed = {
        p.name: versions(venv_python(p), [*p.packages, "mnist-serving", "ai-edge-litert"])
        for p in PEERS
    }
    try:
        for peer in PEERS:
            start(peer, version_dir, args.model_dir)
        accuracy = {p.name: check_answers(p, digits, labels) for p in PEERS}
        ceiling = raw_ceiling(args.model_dir, args.seconds / 2, "fp32")
        scenarios = [(1, c) for c in (1, 8, 32, 64)] + [(256, 2)]
        for turn, (n, c) in enumerate(scenarios):
            order = PEERS[turn % len(PEERS) :] + PEERS[: turn % len(PEERS)]
            for peer in order:
                payload = body(peer.protocol, digits[:n])
                wrk_post(peer.url + peer.predict_path, payload, JSON, min(c, 4), 1)  # warm-up
                rows.append(
                    {
                        "server": peer.name,
                        "images": n,
                        "concurrency": c,
                        **measured(peer, peer.predict_path, payload, JSON, n, c, args.seconds),
                    }
                )
        # Ours also with its binary digits API, the format we recommend for batches, between
        # two fresh ceiling readings (the raw interpreter's speed drifts on this shared host).
        ours = PEERS[0]
        before = raw_ceiling(args.model_dir, args.seconds / 2, "fp32")
        octet = {"Content-Type": "application/octet-stream"}
        rows.append(
            {
                "server": "ours, octet-stream",
                "images": 256,
                "concurrency": 2,
                **measured(
                    ours, "/v1/digits:classify", digits.tobytes(), octet, 256, 2, args.seconds
                ),
            }
        )
        after = raw_ceiling(args.model_dir, args.seconds / 2, "fp32")
        ceiling["around_binary_run"] = [
            before["batch_256_images_per_s"],
            after["batch_256_images_per_s"],
        ]
        memory = {
            p.name: rss_mb(p.process.pid, peak=True, children=True) for p in PEERS if p.process
        }
    finally:
        for peer in PEERS:
            finish(peer.process)
    report(rows, memory, accuracy, ceiling, installed, args)


def report(rows, memory, accuracy, ceiling, installed, args) -> None:
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
        f"{args.seconds:.0f} s per point; wrk (C) on the same machine\n"
    )
    print("| server | versions | ready after | peak RSS | accuracy on 256 test digits |")
    print("|---|---|---:|---:|---:|")
    for peer in PEERS:
        print(
            f"| {peer.name} | {installed[peer.name]} | {peer.ready_s:.1f} s | {memory[peer.name]:.0f} MB | {accuracy[peer.name]:.3f} |"
        )
    around = ceiling["around_binary_run"]
    print(
        f"\nraw LiteRT ceiling, batches of 256 (same run): {ceiling['batch_256_images_per_s']:,.0f} "
        f"images/s before the scenarios; {around[0]:,.0f} and {around[1]:,.0f} just before and "
        "after the 'ours, octet-stream' row\n"
    )
    print(
        "| images/request | connections | server | req/s | images/s | p50 ms | p99 ms | CPU µs/req | errors | req/s vs ours |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    ours = {(r["images"], r["concurrency"]): r for r in rows if r["server"] == "ours"}
    for r in sorted(rows, key=lambda r: (r["images"], r["concurrency"], r["server"] != "ours")):
        base = ours[(r["images"], r["concurrency"])]["rps"] or float("nan")
        print(
            f"| {r['images']} | {r['concurrency']} | {r['server']} | {r['rps']:,} | {r['images_per_s']:,} | "
            f"{r['p50_ms']} | {r['p99_ms']} | {r['cpu_us_per_request']:,} | {r['errors']} | "
            f"{r['rps'] / base:.2f}× |"
        )
    plot(rows, args.plot)
    print(
        "\n```json\n"
        + json.dumps({"rows": rows, "memory_mb": memory, "ceiling": ceiling}, indent=1)
        + "\n```"
    )


def plot(rows, target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (thr, lat) = plt.subplots(1, 2, figsize=(12, 4.2))
    for peer in PEERS:
        single = sorted(
            (r for r in rows if r["server"] == peer.name and r["images"] == 1),
            key=lambda r: r["concurrency"],
        )
        cs = [r["concurrency"] for r in single]
        thr.plot(cs, [r["rps"] for r in single], marker="o", label=peer.name)
        lat.plot(cs, [r["p99_ms"] for r in single], marker="o", label=peer.name)
    for ax, title, unit in (
        (thr, "Throughput, single-image requests", "requests/s"),
        (lat, "p99 latency", "ms"),
    ):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent connections")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    lat.set_yscale("log")
    fig.tight_layout()
    fig.savefig(target, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
