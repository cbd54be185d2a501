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


# The gateway's layers, top to bottom (docs/architecture.md): each imports only its own and
# those below it. The base modules are the top-level ones that are not the composition root
# or the command.
LAYERS = (
    "cli",
    "build",
    "lifecycle",
    "adapters",
    "core",
    "repositories",
    "runtimes",
    "observability",
    "base",
)
GATEWAY = ROOT / "serving" / "mnist_serving"


def _layer(module: str) -> str | None:
    """The layer of a ``mnist_serving`` module (None for any other package's)."""
    parts = module.split(".")
    if parts[0] != "mnist_serving":
        return None
    if len(parts) > 1 and parts[1] in LAYERS:
        return parts[1]
    return "base"


def _imported(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, where it does (inside functions too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


def test_each_layer_of_the_gateway_imports_only_its_own_and_those_below() -> None:
    upward = []
    for path in sorted(GATEWAY.rglob("*.py")):
        parts = path.relative_to(GATEWAY.parent).with_suffix("").parts
        layer = _layer(".".join(parts))
        assert layer is not None
        for line, module in _imported(path):
            theirs = _layer(module)
            if theirs is not None and LAYERS.index(theirs) < LAYERS.index(layer):
                upward.append(f"{path.relative_to(ROOT)}:{line} ({layer}) imports {module}")
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_the_layer_check_sees_an_upward_import(tmp_path) -> None:
    """The check reads lazy imports too, and places top-level modules in the base."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from mnist_serving.build import build_gateway\n")
    assert _imported(module) == [(2, "mnist_serving.build")]
    assert _layer("mnist_serving.settings") == "base"
    assert _layer("mnist_serving.lifecycle.cpus") == "lifecycle"
    assert LAYERS.index("build") < LAYERS.index(_layer("mnist_serving.settings") or "")
