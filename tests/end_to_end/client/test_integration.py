"""The SDK and the CLI against a real gateway on free ports: sync and async, both transports,
all three APIs (digits, TF Serving, Open Inference Protocol), every input kind."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_client import AsyncMnistClient, InvalidInput, MnistClient, NotFound
from tests.helpers.gateways import png_bytes
from tests.helpers.processes import Server, start_gateway, stop_gateway

EXAMPLES = Path(__file__).resolve().parents[3] / "client" / "examples"


@pytest.fixture(scope="module")
def gateway(model_dir) -> Iterator[Server]:
    srv = start_gateway(model_dir)
    yield srv
    stop_gateway(srv)


def _url(gateway: Server, transport: str) -> str:
    return gateway.url if transport == "rest" else f"grpc://{gateway.grpc}"


def _inputs(digits, tmp_path):
    """The same 7 test digits as every input kind the SDK takes."""
    x = digits["x_test"][:7]
    path = tmp_path / "d5.png"
    path.write_bytes(png_bytes(255 - x[5]))
    return (
        x,
        [
            x[0],  # 28×28 uint8
            x[1:2].astype(np.float32) / 255,  # N×28×28 float 0-1
            x[2].reshape(1, 784),  # N×784
            x[3].reshape(1, 28, 28, 1),  # N×28×28×1
            Image.fromarray(255 - x[4]).resize((140, 140)),  # PIL, dark on light, large
            str(path),  # a file path
            png_bytes(x[6]),  # PNG bytes
        ],
    )


@pytest.mark.parametrize("transport", ["rest", "grpc"])
@pytest.mark.parametrize("api", ["digits", "tfserving", "v2"])
def test_sync_client_every_input_kind(gateway, digits, tmp_path, transport, api) -> None:
    x, inputs = _inputs(digits, tmp_path)
    with MnistClient(_url(gateway, transport), api=api, chunk_size=3) as client:
        assert client.ready()
        result = client.classify(inputs, top_k=3)
        reference = client.classify(x)
    assert len(result) == 7
    assert [p.digit for p in result] == [p.digit for p in reference]
    assert all(len(p.probabilities) == 10 and len(p.top_k) == 3 for p in result)
    assert all(p.top_k[0].digit == p.digit for p in result)
    if not (api == "tfserving" and transport == "rest"):
        assert {p.model_version for p in result} == {1}


@pytest.mark.parametrize("transport", ["rest", "grpc"])
@pytest.mark.parametrize("api", ["digits", "v2"])
async def test_async_client_many_concurrent_calls(gateway, digits, transport, api) -> None:
    import asyncio

    x, y = digits["x_test"][:40], digits["y_test"][:40]
    async with AsyncMnistClient(_url(gateway, transport), api=api) as client:
        assert await client.ready()
        singles = await asyncio.gather(*(client.classify(image) for image in x))
        batch = await client.classify(x)
    assert [s[0].digit for s in singles] == [p.digit for p in batch]
    assert sum(p.digit == t for p, t in zip(batch, y, strict=True)) >= 34


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_server_refusals_arrive_as_typed_errors(gateway, transport) -> None:
    with (
        MnistClient(_url(gateway, transport)) as client,
        pytest.raises(InvalidInput, match="image 0"),
    ):
        client.classify(b"\x89PNG\r\n\x1a\n broken")
    for api in ("tfserving", "v2"):
        other = MnistClient(_url(gateway, transport), model="other", api=api)
        with other, pytest.raises(NotFound, match="other"):
            other.classify(np.zeros((28, 28), np.uint8))
    # V2 asks the model's own readiness, so a model the server does not have is not ready.
    with MnistClient(_url(gateway, transport), model="other", api="v2") as other:
        assert not other.ready()


def _cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "mnist_client.cli", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_cli_table_json_stdin_and_failures(gateway, digits, tmp_path) -> None:
    files = []
    for i in range(3):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(255 - digits["x_test"][i]).resize((112, 112)).save(path)
        files.append(str(path))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    ok = _cli(*files, "--url", gateway.url, "--top-k", "2")
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.decode().splitlines()
    assert lines[0].split() == ["file", "digit", "confidence", "top-k"] and len(lines) == 4
    assert [line.split()[1] for line in lines[1:]] == [str(d) for d in digits["y_test"][:3]]

    as_json = _cli(*files, "--url", f"grpc://{gateway.grpc}", "--json")
    assert as_json.returncode == 0
    assert [r["digit"] for r in json.loads(as_json.stdout)] == digits["y_test"][:3].tolist()
    for url in (gateway.url, f"grpc://{gateway.grpc}"):  # the Open Inference Protocol
        v2 = _cli(*files, "--url", url, "--api", "v2", "--json")
        assert v2.returncode == 0, v2.stderr
        assert [r["digit"] for r in json.loads(v2.stdout)] == digits["y_test"][:3].tolist()

    piped = _cli("-", "--url", gateway.url, "--json", stdin=(tmp_path / "digit1.png").read_bytes())
    assert (
        json.loads(piped.stdout)[0]["file"] == "<stdin>"
        and json.loads(piped.stdout)[0]["digit"] == digits["y_test"][1]
    )

    mixed = _cli(
        files[0], str(tmp_path / "broken.png"), str(tmp_path / "absent.png"), "--url", gateway.url
    )
    assert mixed.returncode == 1
    out = mixed.stdout.decode()
    assert "broken.png  error: HTTP 400" in out and "absent.png  error: cannot read" in out
    assert "2 of 3 file(s) failed" in mixed.stderr.decode()

    down = _cli(files[0], "--url", "http://127.0.0.1:9")
    assert down.returncode == 1 and b"cannot reach" in down.stdout


def test_the_runnable_examples_work(gateway, tmp_path, digits) -> None:
    path = tmp_path / "seven.png"
    Image.fromarray(255 - digits["x_test"][0]).resize((90, 90)).save(path)
    rest = subprocess.run(
        [sys.executable, str(EXAMPLES / "classify_rest.py"), str(path), "--url", gateway.url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert rest.returncode == 0, rest.stderr
    assert rest.stdout.startswith(f"{path}: 7 (")
    over_grpc = subprocess.run(
        [sys.executable, str(EXAMPLES / "classify_grpc.py"), "--url", f"grpc://{gateway.grpc}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert over_grpc.returncode == 0, over_grpc.stderr
    assert over_grpc.stdout.count("digit ") == 2 and "model version 1" in over_grpc.stdout
