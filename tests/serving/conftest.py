"""Gateways for the tests: in-process (ASGI, no sockets) and real servers on free ports."""

from __future__ import annotations

import base64
import io
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from mnist_serving.app import build_app
from mnist_serving.settings import Settings


@pytest.fixture
async def api(model_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The REST app in-process with its model loaded (lifespan run by hand)."""
    app = build_app(Settings(model_dir=model_dir, version_labels={"stable": 1}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


@dataclass
class Server:
    url: str
    grpc: str  # host:port
    process: subprocess.Popen[bytes]
    log: Path


def start_server(
    model_dir: Path, *flags: str, env: dict[str, str] | None = None, grpc_port: int = 0
) -> Server:
    """``mnist-serve`` on a free port (port 0; the real one is read from its ready line).

    Output goes to a file, not a pipe: a pipe nobody drains would block the server.
    """
    log = Path(tempfile.mkstemp(prefix="gateway-", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mnist_serving.cli", "--model-dir", str(model_dir),
             "--host", "127.0.0.1", "--rest-port", "0", "--grpc-port", str(grpc_port),
             "--log-level", "warning", *flags],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        match = re.search(
            r"ready on (https?://\S+), gRPC ([\w.:]+)", log.read_text(errors="replace")
        )
        if match:
            return Server(match.group(1), match.group(2), process, log)
        time.sleep(0.1)
    process.kill()
    process.wait()
    raise AssertionError("gateway did not start:\n" + log.read_text(errors="replace"))


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    server.log.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[Server]:
    srv = start_server(model_dir)
    yield srv
    stop_server(srv)


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def b64_png(array: np.ndarray) -> dict[str, str]:
    return {"b64": base64.b64encode(png_bytes(array)).decode()}
