"""The gateway image's install step in a fresh virtual environment: no TensorFlow, and ``mnist-
serve`` starts."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.helpers.compose_stack import (
    DEPLOY,
    ROOT,
)


def _run(*cmd: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(cmd), capture_output=True, text=True, timeout=120, check=False, cwd=ROOT, **kwargs
    )


@pytest.mark.end_to_end  # a real pip install into a fresh venv
def test_dockerfile_install_steps_work_and_keep_tensorflow_out_of_the_gateway(tmp_path) -> None:
    """The gateway image's install step (pip install ".[serve,otel]") in a fresh venv, as the
    Dockerfile runs it: the entry point starts, tracing can be turned on, and TensorFlow is not
    installed."""
    dockerfile = (DEPLOY / "gateway" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:\d+\.\d+\.\d+-slim-\w+ AS build$", dockerfile, re.M), (
        "pin the base image"
    )
    assert "USER mnist" in dockerfile and '".[serve,otel]"' in dockerfile
    import venv

    env = tmp_path / "gateway-image"
    venv.EnvBuilder(with_pip=True).create(env)
    install = _run(str(env / "bin" / "pip"), "install", "--quiet", f"{ROOT}[serve,otel]")
    assert install.returncode == 0, install.stderr[-2000:]
    listed = _run(str(env / "bin" / "pip"), "list", "--format=freeze").stdout.lower()
    assert "tensorflow" not in listed and "ai-edge-litert" in listed
    assert "opentelemetry-sdk" in listed
    help_text = _run(str(env / "bin" / "mnist-serve"), "--help")
    assert help_text.returncode == 0 and "--tfserving-targets" in help_text.stdout
    trainer = (DEPLOY / "trainer" / "Dockerfile").read_text()
    assert '".[train]"' in trainer and (DEPLOY / "trainer" / "train-if-needed.sh").exists()
