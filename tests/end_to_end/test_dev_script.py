"""``python3 dev.py serve`` becomes the gateway: a supervisor (or ``kill``) that stops the script
stops the gateway, and leaves nothing listening on its port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.helpers.processes import free_port
from tests.helpers.versions import wait_for

ROOT = Path(__file__).resolve().parents[2]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_sigterm_to_dev_serve_stops_the_gateway_it_started(model_dir: Path, tmp_path) -> None:
    port = free_port()
    flags = ["--host", "127.0.0.1", "--rest-port", str(port), "--grpc-port", "0", "--workers", "1"]
    with (tmp_path / "serve.log").open("wb") as log:
        script = subprocess.Popen(
            [sys.executable, "dev.py", "serve", *flags],
            cwd=ROOT,
            env={**os.environ, "MNIST_MODEL_DIR": str(model_dir)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/readyz"
    try:
        wait_for(lambda: _answers(url), "the gateway dev.py started", 90)
        # The script's own process is the gateway now (exec), not its parent.
        assert b"mnist-serve" in Path(f"/proc/{script.pid}/cmdline").read_bytes()
        script.send_signal(signal.SIGTERM)
        assert script.wait(60) == 0, (tmp_path / "serve.log").read_text()[-2000:]
    finally:
        if script.poll() is None:
            script.kill()
            script.wait(10)
    assert not _answers(url)  # no orphan left serving
