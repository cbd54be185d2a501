"""What the peer benchmarks share: a virtual environment per peer, starting a peer's server and
waiting for it, the request bodies of both protocols, and wrk with a process tree's CPU."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path

import httpx
import numpy as np

from benchmarks.cload import wrk_post
from tests.helpers.processes import cpu_seconds, process_tree

VENVS = Path(__file__).parent / ".venvs"
JSON = {"Content-Type": "application/json"}


def peer_python(name: str, packages: list[str]) -> Path:
    """The Python of the peer's own environment under ``benchmarks/.venvs/`` (made on first
    use: peers pin versions that clash with the gateway's and with each other's)."""
    env = VENVS / name
    python = env / "bin" / "python"
    if not (env / ".installed").exists():
        print(f"# installing {name}: {' '.join(packages)}", file=sys.stderr)
        venv.EnvBuilder(with_pip=True, clear=True).create(env)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
        (env / ".installed").write_text("ok")
    return python


def versions(python: Path, names: list[str]) -> str:
    """``name==version`` of the given distributions as installed for ``python``."""
    freeze = subprocess.run(
        [str(python), "-m", "pip", "freeze"], capture_output=True, text=True
    ).stdout
    wanted = {n.split("==")[0].split("[")[0].lower() for n in names}
    return ", ".join(line for line in freeze.splitlines() if line.split("==")[0].lower() in wanted)


def launch(
    name: str, command: list[str], env: dict[str, str], ready_url: str, log: Path
) -> tuple[subprocess.Popen[bytes], float]:
    """Start a server and wait until ``ready_url`` answers 200: (process, seconds it took)."""
    started = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}
        )
    while time.perf_counter() - started < 180:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(ready_url, timeout=1).status_code == 200:
                return process, time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"{name} not ready after 180 s:\n{log.read_text()[-3000:]}")


def finish(process: subprocess.Popen[bytes] | None) -> None:
    """Stop a server and every process it started: LitServe's and Ray's workers outlive their
    parent otherwise, and an orphan polling its queues would take CPU from the next runs."""
    if process is None:
        return
    family = process_tree(process.pid) if process.poll() is None else []
    for pid in family:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(pid) for pid in family):
        process.poll()  # reaps our own child; init reaps the orphans
        time.sleep(0.1)
    for pid in family:
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
    process.wait()


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended on its own meanwhile
        os.kill(pid, sig)


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def body(protocol: str, images: np.ndarray) -> bytes:
    """TF Serving's ``{"instances": ...}`` rows ("v1") or the equivalent V2 JSON ("v2")."""
    x = (images.astype(np.float32) / 255.0)[..., None]
    if protocol == "v1":
        return json.dumps({"instances": x.tolist()}).encode()
    tensor = {"name": "images", "shape": [len(x), 784], "datatype": "FP32"}
    return json.dumps({"inputs": [{**tensor, "data": x.reshape(-1).tolist()}]}).encode()


def probabilities(protocol: str, doc: object) -> np.ndarray:
    """The [N, 10] probabilities of a peer's answer, whatever its shape."""
    if isinstance(doc, list):  # BentoML answers the array itself
        return np.array(doc).reshape(-1, 10)
    assert isinstance(doc, dict)
    found = doc["predictions"] if protocol == "v1" else doc["outputs"][0]["data"]
    return np.array(found).reshape(-1, 10)


def measured(
    pid: int,
    url: str,
    payload: bytes,
    headers: dict[str, str],
    images: int,
    connections: int,
    seconds: float,
) -> dict:
    """wrk against one server, with its process tree's CPU per request over the run."""
    cpu = cpu_seconds(pid)
    r = wrk_post(url, payload, headers, connections, seconds)
    used = cpu_seconds(pid) - cpu
    answered_ok = r["requests"] - r["non_2xx"]  # a shed request (503) is answered, not served
    r["ok_rps"] = round(r["rps"] * answered_ok / max(r["requests"], 1), 1)
    r["images_per_s"] = round(r["ok_rps"] * images)
    r["cpu_us_per_request"] = round(used * 1e6 / max(r["requests"], 1))
    return r
