"""A fresh virtual environment with only the plain install (the client) classifies digits
against a running gateway over both transports, and has no TensorFlow in it."""

from __future__ import annotations

import subprocess
import textwrap
import venv
from pathlib import Path

from tests.helpers.processes import start_gateway, stop_gateway

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent(
    """
    import importlib.util, json, sys
    import numpy as np
    from mnist_client import MnistClient
    digits = np.load(sys.argv[3])["x_test"][:5]
    out = {"tensorflow": importlib.util.find_spec("tensorflow") is not None}
    for name, url in (("rest", sys.argv[1]), ("grpc", "grpc://" + sys.argv[2])):
        with MnistClient(url) as client:
            out[name] = [p.digit for p in client.classify(digits)]
    print(json.dumps(out))
    """
)


def _site_packages_mb(env: Path) -> float:
    (lib,) = env.glob("lib/python*/site-packages")
    return sum(f.stat().st_size for f in lib.rglob("*") if f.is_file()) / 1e6


def test_client_only_install_has_no_tensorflow_and_works(tmp_path, model_dir, fixture_npz) -> None:
    env = tmp_path / "client-env"
    venv.EnvBuilder(with_pip=True).create(env)
    python = env / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    assert "tensorflow" not in listed and "keras" not in listed and "starlette" not in listed
    gateway = start_gateway(model_dir)
    try:
        run = subprocess.run(
            [str(python), "-c", SCRIPT, gateway.url, gateway.grpc, str(fixture_npz)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        stop_gateway(gateway)
    assert run.returncode == 0, run.stderr[-3000:]
    import json

    out = json.loads(run.stdout)
    assert out["tensorflow"] is False
    assert out["rest"] == out["grpc"] and len(out["rest"]) == 5
    size = _site_packages_mb(env)
    print(f"\nclient-only install: {size:.0f} MB in site-packages")  # quoted in docs/client.md
    assert size < 300, f"the client-only install grew to {size:.0f} MB"
