"""Fixtures of the end-to-end tests: the trained model's gateway, in-process and on free ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from mnist_serving.settings import Settings
from tests.helpers.gateways import in_process
from tests.helpers.processes import Server, start_gateway, stop_gateway


@pytest.fixture
async def api(model_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The REST app in-process with the trained model loaded."""
    async with in_process(Settings(model_dir=model_dir, version_labels={"stable": 1})) as client:
        yield client


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[Server]:
    srv = start_gateway(model_dir)
    yield srv
    stop_gateway(srv)
