"""The SDK's Open Inference Protocol client against a server another project wrote: KServe's
own ``ModelServer`` (its V2 REST and gRPC, in ``.venv-clients``) hosting a numpy model of this
contract (``tests/external/template_model.py``). The answers must be that model's, to the
float, over both transports, sync and async."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import numpy as np
import pytest

from mnist_client import AsyncMnistClient, MnistClient, NotFound
from tests.conftest import FIXTURE
from tests.external.template_model import probabilities, templates
from tests.helpers.external import EXTERNAL, clients_python
from tests.helpers.processes import free_port, wait_for_ok


@pytest.fixture(scope="module")
def kserve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    http_port, grpc_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("kserve") / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(clients_python()),
                str(EXTERNAL / "kserve_server.py"),
                str(FIXTURE),
                "--http_port",
                str(http_port),
                "--grpc_port",
                str(grpc_port),
            ],
            cwd=EXTERNAL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{http_port}"
    try:
        wait_for_ok(url + "/v2/health/ready", process, log)
        yield url, f"grpc://127.0.0.1:{grpc_port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def expected(digits) -> np.ndarray:
    return probabilities(digits["x_test"][:50] / 255.0, templates(str(FIXTURE)))


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_the_sdk_gets_kserves_answers(kserve, digits, expected, transport) -> None:
    url = kserve[0] if transport == "rest" else kserve[1]
    with MnistClient(url, api="v2", chunk_size=16) as client:
        assert client.ready()
        predictions = client.classify(digits["x_test"][:50], top_k=2)
    with MnistClient(url, api="v2", model="other") as other, pytest.raises(NotFound):
        other.classify(digits["x_test"][0])
    got = np.array([p.probabilities for p in predictions])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert [p.top_k[0].digit for p in predictions] == list(expected.argmax(axis=1))


async def test_the_async_sdk_gets_kserves_answers(kserve, digits, expected) -> None:
    for url in kserve:
        async with AsyncMnistClient(url, api="v2") as client:
            assert await client.ready()
            predictions = await client.classify(digits["x_test"][:50])
        np.testing.assert_allclose([p.probabilities for p in predictions], expected, atol=1e-6)
