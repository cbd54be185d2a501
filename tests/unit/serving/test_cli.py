"""``mnist-serve``'s command line: its help and its refusals before anything starts."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_cli_refuses_a_missing_model_folder_with_advice(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mnist_serving.cli", "--model-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert f"no model version found under {tmp_path / 'mnist'}" in result.stderr
    assert "mnist-train" in result.stderr and "Traceback" not in result.stderr


def test_help_reads_cleanly_with_real_defaults_and_choices(capsys) -> None:
    from mnist_serving.cli import build_parser

    text = " ".join(build_parser().format_help().split())  # argparse wraps lines
    assert "PydanticUndefined" not in text and "``" not in text
    assert "--backend {local,tfserving}" in text and "--runtime {litert,savedmodel}" in text
    assert "(default: healthz,readyz,metrics,docs,demo,stats)" in text
    assert "(default: 127.0.0.1:8500)" in text and "(default: 256)" in text
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--backend", "tf-serving"])
    assert "invalid choice: 'tf-serving'" in capsys.readouterr().err
