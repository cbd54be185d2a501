"""The OpenAPI document tells the truth: it is valid OpenAPI, it lists every route with its
parameters, and schemathesis (``st run --checks all``, every check it has) finds no request the
document allows that the server refuses, none it forbids that the server takes, and no answer
the document does not describe."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from mnist_serving.adapters.rest.openapi import document
from mnist_serving.adapters.rest.routes import ROUTES
from mnist_serving.settings import Settings
from tests.helpers.processes import Server

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
EXAMPLES = os.environ.get("MNIST_SCHEMATHESIS_EXAMPLES", "6")


def _settings(**overrides: object) -> Settings:
    return Settings(model_dir=Path("models"), **overrides)  # type: ignore[arg-type]


def test_the_served_document_is_the_one_built_from_the_table(server: Server) -> None:
    served = httpx.get(server.url + "/openapi.json", timeout=10).json()
    assert served == document(ROUTES, _settings())


# The three predict routes share one body schema, and schemathesis's coverage phase spends ~37 s
# on each (784 numbers per example). The default-version route gets every phase; the pinned and
# labelled ones, whose path parameters the status and metadata routes cover in full, get the
# examples and fuzzing phases with every check. So do the two V2 infer routes: on their body
# schema the coverage phase itself crashes inside Hypothesis (rendering a strategy's lambda
# under deep recursion trips CPython 3.11's "AST constructor recursion depth mismatch").
SLOW_BODIES = (
    r"^(/v1/models/\{model\}/(versions|labels)/\{\w+\}:predict"
    r"|/v2/models/\{model\}(/versions/\{model_version\})?/infer)$"
)


def _schemathesis(url: str, *selection: str, workers: int = 2) -> str:
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.end_to_end.serving.schemathesis_hooks",
        "PYTHONPATH": str(ROOT),
    }
    command = [
        str(Path(sys.executable).with_name("st")),
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        EXAMPLES,
        "--workers",
        str(workers),
        "--seed",
        "20261201",
        "--no-color",
        *selection,
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-6000:]
    return report


def _tested(report: str) -> int:
    selected = re.search(r"Selected: (\d+)/(\d+)", report)
    tested = re.search(r"Tested: (\d+)", report)
    assert selected and tested, report[-3000:]
    assert tested.group(1) == selected.group(1)  # every selected operation was tried
    return int(tested.group(1))


def test_schemathesis_with_all_checks_finds_nothing(server: Server) -> None:
    everything = _tested(_schemathesis(server.url, "--exclude-path-regex", SLOW_BODIES))
    # One worker here: with two, schemathesis at times counts an operation that its fuzzing
    # phase tested as skipped by the examples phase (no examples in the schema).
    slow = _tested(
        _schemathesis(
            server.url,
            "--include-path-regex",
            SLOW_BODIES,
            "--phases",
            "examples,fuzzing,stateful",
            workers=1,
        )
    )
    # schemathesis leaves out the one operation that serves the document it is reading.
    assert slow == 4 and everything + slow == sum(r.in_document for r in ROUTES) - 1
