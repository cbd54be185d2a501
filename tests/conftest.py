"""Shared fixtures: the committed MNIST subset and one model trained on it for the session.

``tests/fixtures/mnist-small.npz`` holds the first 3,000 training and 1,000 test digits of the
real MNIST set (cut from the full file by ``tests/fixtures/README.md``'s command), so the suite
runs on a fresh clone without ../shared.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mnist_serving.observability.tracing import Tracing
from tests.helpers.tracing import in_memory_tracing
from tests.helpers.versions import without_int8

FIXTURE = Path(__file__).parent / "fixtures" / "mnist-small.npz"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Other projects' clients' suites run in their own environment, driven by
# tests/end_to_end/serving/test_open_inference_clients.py; this run does not collect them.
collect_ignore = ["external"]


@pytest.fixture(scope="session")
def fixture_npz() -> Path:
    return FIXTURE


@pytest.fixture(scope="session")
def digits() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as d:
        return {k: d[k] for k in d.files}


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """models/ with version 1 trained on the fixture (3 epochs: ~97% on held-out digits), with
    its float LiteRT file only. Whether the export's int8 check passes for a model this small
    depends on the CPU's arithmetic; the tests must not, so the int8 file is removed (as the
    export does when its check fails), and the tests that serve int8 write one themselves."""
    from mnist_training.train import TrainConfig, run

    root = tmp_path_factory.mktemp("models")
    result = run(
        TrainConfig(recipe="seed", epochs=3, data=FIXTURE, model_dir=root), say=lambda _msg: None
    )
    without_int8(result.version_dir)
    return root


@pytest.fixture
def spans() -> tuple[Tracing, InMemorySpanExporter]:
    """A tracer for a gateway under test, and the exporter that keeps its finished spans."""
    return in_memory_tracing()


@pytest.fixture(scope="session")
def figures() -> Iterator[dict[str, Any]]:
    """Measurements the fault tests make; written to ``$MNIST_FIGURES_FILE`` when it is set
    (``benchmarks/reliability.py`` does, and turns them into ``docs/reliability.md``)."""
    found: dict[str, Any] = {}
    yield found
    target = os.environ.get("MNIST_FIGURES_FILE")
    if target and found:
        path = Path(target)
        old = json.loads(path.read_text()) if path.is_file() else {}
        path.write_text(json.dumps({**old, **found}, indent=2) + "\n")


# Fixtures that mean a test runs against the trained model or real processes.
END_TO_END_FIXTURES = frozenset({"model_dir", "fixture_npz", "server", "target"})
# Modules whose tests start real processes or servers on free ports without those fixtures.
END_TO_END_MODULES = frozenset(
    {
        "tests.end_to_end.client.test_install",
        "tests.end_to_end.client.test_v2_peers",
        "tests.end_to_end.deploy.test_gateway_image_install",
        "tests.end_to_end.load.test_benchmark_tools",
        "tests.end_to_end.serving.test_open_inference_clients",
        "tests.end_to_end.serving.test_tracing",
        "tests.end_to_end.serving.test_workers",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test on a trained model or real servers ``end_to_end``, so that
    ``pytest -m "not end_to_end"`` is the quick loop of unit tests on fakes; and refuse a test
    whose folder says otherwise (``tests/unit`` holds no end-to-end test, ``tests/end_to_end``
    nothing else)."""
    misplaced = []
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        module = getattr(getattr(item, "module", None), "__name__", "")
        end_to_end = (
            bool(fixtures & END_TO_END_FIXTURES)
            or module in END_TO_END_MODULES
            or item.get_closest_marker("end_to_end") is not None
        )
        if end_to_end:
            item.add_marker(pytest.mark.end_to_end)
        in_folder = module.startswith("tests.end_to_end.")
        if module.startswith(("tests.unit.", "tests.end_to_end.")) and end_to_end != in_folder:
            misplaced.append(item.nodeid)
    if misplaced:
        raise pytest.UsageError(
            "tests in the wrong folder for what they use (tests/unit: fakes only; "
            "tests/end_to_end: the trained model or real processes): " + ", ".join(misplaced)
        )
