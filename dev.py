#!/usr/bin/env python3
"""Set-up and the two everyday jobs, on a machine with nothing but Python 3.11+.

    python3 dev.py serve   # venv + install, train a model if there is none, then become the
                           # gateway (its process: signals reach mnist-serve itself)
    python3 dev.py test    # system tools the tests and benchmarks drive (apt, as root), venv +
                           # install, then format/lint/type checks, proto drift, tests

Everything goes into ./.venv (made on first use, refreshed when pyproject.toml changes); the
tests also make ./.venv-clients for other projects' clients (tests/external/requirements.txt)
and ./.venv-scanners for the manifests' policy scanner (tests/external/scanners.txt).
Standard library only: this script runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import venv
from pathlib import Path

if sys.version_info < (3, 11):  # noqa: UP036 - whatever python3 is runs this line
    sys.exit(f"mnist-serving needs Python 3.11 or newer; this is {sys.version.split()[0]}")

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed-pyproject"
# Other projects' tools the tests drive, each set in an environment of its own because their
# pins clash with TensorFlow's or with each other's: the clients of Triton and KServe against
# the gateway, and checkov, the policy scanner the Kubernetes manifests are checked with.
SIDE_VENVS = {
    ROOT / ".venv-clients": ROOT / "tests" / "external" / "requirements.txt",
    ROOT / ".venv-scanners": ROOT / "tests" / "external" / "scanners.txt",
}
SHARED_DATA = ROOT.parent / "shared" / "data" / "mnist.npz"
# The version-folder rule comes from the contract package; its layout module is standard
# library only, so it is read from the source tree before anything is installed.
sys.path.insert(0, str(ROOT / "contract"))
from mnist_contract.layout import model_base, version_dirs  # noqa: E402


def run(*cmd: str | Path, **env: str) -> None:
    """Run one step; stop here if it fails. A SIGTERM or SIGINT sent to this script is passed
    on to the step, so a supervisor that stops the script stops what it runs."""
    print("+", " ".join(map(str, cmd)), flush=True)
    child = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, env={**os.environ, **env})

    def pass_on(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    previous = {s: signal.signal(s, pass_on) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = child.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if code:
        sys.exit(128 - code if code < 0 else code)


def become(*cmd: str | Path) -> None:
    """Replace this process with ``cmd``: its pid, its signals, its exit code."""
    print("+", " ".join(map(str, cmd)), flush=True)
    os.chdir(ROOT)
    os.execv(str(cmd[0]), [str(c) for c in cmd])


def ensure_venv() -> None:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    if not (BIN / "python").exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    STAMP.write_text(digest)


def ensure_side_venv(folder: Path, requirements: Path) -> None:
    stamp = folder / ".installed-requirements"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    python = folder / BIN.name / "python"
    if not python.exists():
        print(f"creating {folder}", flush=True)
        venv.EnvBuilder(with_pip=True).create(folder)
    run(python, "-m", "pip", "install", "--quiet", "-r", requirements)
    stamp.write_text(digest)


def has_model(model_dir: Path) -> bool:
    return bool(version_dirs(model_base(model_dir)))


def serve(args: list[str]) -> None:
    ensure_venv()
    model_dir = Path(os.environ.get("MNIST_MODEL_DIR", ROOT / "models"))
    if not has_model(model_dir):
        data = ["--data", str(SHARED_DATA)] if SHARED_DATA.exists() else []
        print(f"no model under {model_base(model_dir)}: training one first (about 5 minutes)")
        run(BIN / "mnist-train", "--model-dir", model_dir, *data)
    become(BIN / "mnist-serve", "--model-dir", model_dir, *args)


# Tools the tests and benchmarks drive (a command, or a file for those not on the PATH), and
# the Debian packages that bring them: the browser, Prometheus, docker-compose and kubectl, the
# C load generators, and podman with what it needs to run the compose stack without Docker or
# systemd (runc, netavark and aardvark-dns for networks with names, iptables for netavark's
# bridge rules, catatonit for pods, debootstrap for the base image). Packages are installed
# without their recommendations, so what a tool runs at run time is named here too: a fresh
# machine has none of it (netavark, for one, only recommends iptables and fails without it).
SYSTEM_TOOLS = {
    "chromium": "chromium",
    "promtool": "prometheus",
    "docker-compose": "docker-compose",
    "kubectl": "kubernetes-client",
    "openssl": "openssl",
    "wrk": "wrk",
    "h2load": "nghttp2-client",
    "podman": "podman",
    "runc": "runc",
    "debootstrap": "debootstrap",
    "/usr/lib/podman/netavark": "netavark",
    "/usr/lib/podman/aardvark-dns": "aardvark-dns",
    "/usr/sbin/iptables": "iptables",
    "catatonit": "catatonit",
}


def _present(tool: str) -> bool:
    return Path(tool).exists() if tool.startswith("/") else shutil.which(tool) is not None


def ensure_system_tools() -> None:
    """Install the tools the tests drive (Debian, as root); otherwise name them."""
    missing = sorted({pkg for tool, pkg in SYSTEM_TOOLS.items() if not _present(tool)})
    if not missing:
        return
    if shutil.which("apt-get") and os.geteuid() == 0:
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        run("apt-get", "update", "-qq", **env)
        run("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing, **env)
    else:
        print(
            f"warning: the browser and deployment tests need {', '.join(missing)}; install them "
            f"(Debian: sudo apt-get install --no-install-recommends {' '.join(missing)})",
            flush=True,
        )


def test(args: list[str]) -> None:
    ensure_system_tools()
    ensure_venv()
    for folder, requirements in SIDE_VENVS.items():
        ensure_side_venv(folder, requirements)
    run(BIN / "ruff", "format", "--check", ".")
    run(BIN / "ruff", "check", ".")
    run(BIN / "mypy")
    run(BIN / "python", "scripts/generate_protos.py", "--check")
    run(BIN / "pytest", *args, TF_CPP_MIN_LOG_LEVEL="2")


def install(_args: list[str]) -> None:
    ensure_venv()


def main() -> None:
    jobs = {"serve": serve, "test": test, "install": install}
    if len(sys.argv) < 2 or sys.argv[1] not in jobs:
        print(__doc__)
        sys.exit(2)
    jobs[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
