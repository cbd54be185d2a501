"""The product code stays walkable: small functions, modules of a few hundred lines, and no
formatting decided by hand (``ruff format`` decides it everywhere)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "contract/mnist_contract",
    "training/mnist_training",
    "serving/mnist_serving",
    "client/mnist_client",
)
MOST_FUNCTION_LINES = 60
MOST_MODULE_LINES = 420


def _modules() -> list[Path]:
    return [
        path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if not path.name.endswith(("_pb2.py", "_pb2_grpc.py"))
    ]


def test_no_function_is_longer_than_a_screen() -> None:
    long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MOST_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines})")
    assert not long, long


def test_no_module_holds_two_things() -> None:
    large = [
        f"{path.relative_to(ROOT)} ({n})"
        for path in _modules()
        if (n := len(path.read_text().splitlines())) > MOST_MODULE_LINES
    ]
    assert not large, large


def test_the_formatter_decides_every_layout() -> None:
    # Spelled apart, so that this file does not match itself.
    markers = ("fmt: " + "skip", "fmt: " + "off")
    found = [
        str(path.relative_to(ROOT))
        for folder in (*PACKAGES, "benchmarks", "tests", "scripts")
        for path in (ROOT / folder).rglob("*.py")
        # Hidden folders hold what runs make (the peers' virtual environments), not our code.
        if not any(part.startswith(".") for part in path.relative_to(ROOT).parts)
        and any(marker in path.read_text() for marker in markers)
    ]
    assert not found, found
