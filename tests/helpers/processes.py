"""Real gateways on free ports, and what their processes use: shared by the tests and the
benchmarks.

    server = start_gateway(Path("models"), "--max-batch-size", "64")
    ...  # server.url, server.grpc, server.process.pid
    stop_gateway(server)

The gateway writes its bound ports to ``--ready-file`` once it serves; nothing here reads them
from a printed line.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Server:
    url: str
    grpc: str  # host:port ("" when gRPC is off)
    process: subprocess.Popen[bytes]
    log: Path
    seconds_to_ready: float = 0.0


def wait_for_ok(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float = 60) -> None:
    """Poll ``url`` until it answers 200, failing with the log's tail if ``process`` exits or
    ``seconds`` pass first (for servers that announce nothing but a ready route)."""
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{url}: the server exited:\n" + log.read_text()[-3000:])
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer 200 in {seconds:g} s:\n" + log.read_text()[-3000:])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_gateway(
    model_dir: Path,
    *flags: str,
    env: dict[str, str] | None = None,
    grpc_port: int = 0,
    timeout: float = 60.0,
    workers: str | None = "1",
) -> Server:
    """``mnist-serve`` on free ports; returns once its ready file says it serves.

    ``workers`` is set as ``MNIST_WORKERS`` (a ``--workers`` flag wins over it; None leaves
    the gateway's default): one process unless asked, so a figure or a test speaks of one
    worker. Output goes to a file, not a pipe: a pipe nobody drains would block the server.
    """
    log = Path(tempfile.mkstemp(prefix="gateway-", suffix=".log")[1])
    ready = log.with_suffix(".ready.json")
    started = time.perf_counter()
    command = [
        sys.executable,
        "-m",
        "mnist_serving.cli",
        "--model-dir",
        str(model_dir),
        "--host",
        "127.0.0.1",
        "--rest-port",
        "0",
        "--grpc-port",
        str(grpc_port),
        "--log-level",
        "warning",
        "--ready-file",
        str(ready),
        *flags,
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=_environment(env, workers)
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if ready.exists():
            ports = json.loads(ready.read_text())
            grpc = f"127.0.0.1:{ports['grpc_port']}" if ports["grpc_port"] else ""
            return Server(ports["rest_url"], grpc, process, log, time.perf_counter() - started)
        time.sleep(0.05)
    process.kill()
    process.wait()
    raise RuntimeError("gateway did not start:\n" + log.read_text(errors="replace"))


def run_gateway(
    model_dir: Path, *flags: str, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """``mnist-serve`` run to its end, its output captured: for starts that must fail."""
    return subprocess.run(
        [sys.executable, "-m", "mnist_serving.cli", "--model-dir", str(model_dir), *flags],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _environment(extra: dict[str, str] | None, workers: str | None) -> dict[str, str]:
    environment = {**os.environ, **(extra or {})}
    if workers is not None:
        environment.setdefault("MNIST_WORKERS", workers)
    else:
        environment.pop("MNIST_WORKERS", None)
    return environment


def stop_gateway(server: Server, timeout: float = 15.0) -> int:
    """SIGTERM (a drain), then SIGKILL past ``timeout``; the exit code."""
    server.process.terminate()
    try:
        code = server.process.wait(timeout)
    except subprocess.TimeoutExpired:
        server.process.kill()
        code = server.process.wait()
    server.log.unlink(missing_ok=True)
    server.log.with_suffix(".ready.json").unlink(missing_ok=True)
    return code


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def rss_mb(pid: int, *, peak: bool = False, children: bool = False) -> float:
    """Resident memory (``peak``: the high-water mark) of a process, with its children."""
    pids = [pid]
    listing = Path(f"/proc/{pid}/task/{pid}/children")
    if children and listing.exists():
        pids += [int(p) for p in listing.read_text().split()]
    total = 0
    for one in pids:
        try:
            total += _status_kib(one, "VmHWM" if peak else "VmRSS")
        except FileNotFoundError:
            continue
    return total / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process and the processes under it use now (a gateway with
    several workers is a supervisor and its workers)."""
    return sum(_own_cpu_seconds(one) for one in process_tree(pid))


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process under it, as /proc lists them now."""
    found, queue = [], [pid]
    while queue:
        one = queue.pop()
        found.append(one)
        for task in Path(f"/proc/{one}/task").glob("*/children"):
            try:
                queue += [int(child) for child in task.read_text().split()]
            except FileNotFoundError:  # the thread ended since it was listed
                continue
    return found


def _own_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:  # it exited since it was listed
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
