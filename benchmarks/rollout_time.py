"""How long the automatic rollout takes with its default thresholds, under a steady load: a
gateway (two workers, ``--rollout auto``) under wrk's closed loop of one-image requests, a copy
of its version published as version 2, and the phase read twice a second until it is promoted
(or rolled back). Reported: when each phase began after the publish, the load's requests/s and
its errors.

    python -m benchmarks.rollout_time --model-dir models --connections 16

Everything targets 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from benchmarks.cload import wrk_post
from benchmarks.support import ROOT
from mnist_contract.layout import model_base, version_dirs
from tests.helpers.processes import start_gateway, stop_gateway
from tests.helpers.versions import publish

OCTET = {"Content-Type": "application/octet-stream"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--seconds", type=float, default=90.0, help="the load's length, the longest wait"
    )
    args = parser.parse_args()
    with np.load(ROOT / "tests/fixtures/mnist-small.npz") as data:
        body = data["x_test"][:1].tobytes()
    versions = version_dirs(model_base(args.model_dir))
    source = versions[max(versions)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(source, root / "mnist" / "1")
        server = start_gateway(root, "--rollout", "auto", workers="2")
        try:
            load: dict = {}
            url = server.url + "/v1/digits:classify"
            worker = threading.Thread(
                target=lambda: load.update(
                    wrk_post(url, body, OCTET, args.connections, args.seconds)
                )
            )
            worker.start()
            time.sleep(5)
            published = time.monotonic()
            publish(root, 2, source)
            timeline = watch(server.url, published, args.seconds)
            worker.join(args.seconds + 60)
        finally:
            stop_gateway(server)
    for phase, seconds in timeline:
        print(f"{seconds:6.1f} s  {phase}")
    print(
        f"load: {load['rps']:,.0f} requests/s, errors {load['errors']}, non-2xx {load['non_2xx']}"
    )


def watch(url: str, published: float, seconds: float) -> list[tuple[str, float]]:
    timeline: list[tuple[str, float]] = []
    while time.monotonic() - published < seconds:
        status = httpx.get(url + "/v1/models/mnist/rollout", timeout=5).json()
        phase = f"{status['phase']} {status.get('canary_weight', 0):g}"
        if not timeline or timeline[-1][0] != phase:
            timeline.append((phase, time.monotonic() - published))
        if status["phase"] in ("promoted", "rolled_back"):
            break
        time.sleep(0.5)
    return timeline


if __name__ == "__main__":
    main()
