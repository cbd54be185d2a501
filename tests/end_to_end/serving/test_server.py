"""A real gateway process on a free port: concurrency, batching, refusal, and the CLI."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import numpy as np
import pytest

from tests.helpers.processes import run_gateway, start_gateway, stop_gateway


async def test_concurrent_callers_each_get_their_own_answer_and_batches_form(
    server, digits
) -> None:
    x, y = digits["x_test"][:64], digits["y_test"][:64]
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        reference = await client.post("/v1/digits:classify", json={"images": x.tolist()})
        expected = [p["digit"] for p in reference.json()["predictions"]]
        assert sum(a == b for a, b in zip(expected, y, strict=True)) >= 55

        async def one(i: int) -> tuple[int, list[float]]:
            r = await client.post(
                "/v1/digits:classify",
                content=x[i].tobytes(),
                headers={"Content-Type": "application/octet-stream"},
            )
            assert r.status_code == 200, r.text
            p = r.json()["predictions"][0]
            return p["digit"], p["probabilities"]

        for _ in range(3):
            answers = await asyncio.gather(*(one(i) for i in range(64)))
            assert [d for d, _ in answers] == expected
            for i, (_, probs) in enumerate(answers):
                np.testing.assert_allclose(
                    probs, reference.json()["predictions"][i]["probabilities"], atol=1e-5
                )
        metrics = (await client.get("/metrics")).text
    buckets = {
        float(line.split('le="')[1].split('"')[0]): float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("mnist_batch_size_bucket")
    }
    single = buckets[1.0]
    total = buckets[float("inf")]
    assert total - single > 0, "no model call ever carried more than one image"


async def test_a_full_queue_answers_503_quickly_with_retry_after(model_dir, digits) -> None:
    srv = start_gateway(
        model_dir,
        "--max-batch-size",
        "1",
        "--max-enqueued-batches",
        "2",
        "--max-images-per-request",
        "2",
        "--batch-timeout-micros",
        "0",
    )
    try:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as client:
            body = digits["x_test"][:2].tobytes()

            async def one() -> httpx.Response:
                return await client.post(
                    "/v1/digits:classify",
                    content=body,
                    headers={"Content-Type": "application/octet-stream"},
                )

            answers = await asyncio.gather(*(one() for _ in range(200)))
    finally:
        stop_gateway(srv)
    refused = [r for r in answers if r.status_code == 503]
    served = [r for r in answers if r.status_code == 200]
    assert refused and served
    assert len(refused) + len(served) == len(answers)
    assert all(r.headers["retry-after"] == "1" for r in refused)
    assert all("queue is full" in r.json()["error"] for r in refused)
    # Refusals do not wait their turn: each takes far less than a served request's queue time.
    assert max(r.elapsed.total_seconds() for r in refused) < 5


def test_a_caller_gone_before_its_body_is_counted_as_cancelled_not_logged_as_a_fault(
    server, digits
) -> None:
    """A load generator's last requests (or an impatient client) hang up mid-body: no stack
    trace in the log, no 500 counted; the request is counted CANCELLED."""

    def cancelled() -> float:
        text = httpx.get(server.url + "/metrics").text
        prefix = 'mnist_requests_total{code="CANCELLED",protocol="rest",route="classify"}'
        return sum(
            float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
        )

    before = cancelled()
    head = (
        b"POST /v1/digits:classify HTTP/1.1\r\nHost: gateway\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Length: 784\r\n\r\n"
    )
    host, port = server.url.removeprefix("http://").split(":")
    for _ in range(3):
        with socket.create_connection((host, int(port))) as raw:
            raw.sendall(head + digits["x_test"][0].tobytes()[:100])
    deadline = time.monotonic() + 10
    while cancelled() < before + 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cancelled() == before + 3
    log = server.log.read_text(errors="replace")
    assert "unhandled error" not in log and "Traceback" not in log
    totals = [
        line
        for line in httpx.get(server.url + "/metrics").text.splitlines()
        if line.startswith("mnist_requests_total{")
    ]
    assert totals and not any('code="INTERNAL"' in line for line in totals)


def test_cli_refuses_bad_settings(model_dir) -> None:
    result = run_gateway(model_dir, "--max-batch-size", "zero", timeout=60)
    assert result.returncode == 2 and "max_batch_size" in result.stderr


@pytest.mark.parametrize("taken", ["--rest-port", "--grpc-port"])
def test_a_port_in_use_stops_the_start_with_one_line(model_dir, taken) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = str(holder.getsockname()[1])
        ports = {"--rest-port": "0", "--grpc-port": "0", taken: port}
        result = run_gateway(
            model_dir,
            "--host",
            "127.0.0.1",
            *(x for pair in ports.items() for x in pair),
            timeout=60,
        )
    assert result.returncode == 1, result.stderr
    assert f"127.0.0.1:{port}" in result.stderr and "cannot listen" in result.stderr
    assert "Traceback" not in result.stderr


def test_environment_variables_configure_the_server(model_dir, digits) -> None:
    srv = start_gateway(model_dir, env={"MNIST_VERSION_LABELS": '{"canary": 1}'})
    try:
        r = httpx.get(srv.url + "/v1/models/mnist/labels/canary")
    finally:
        stop_gateway(srv)
    assert r.status_code == 200 and r.json()["model_version_status"][0]["version"] == "1"


def test_savedmodel_runtime_gives_the_same_answers(model_dir, digits) -> None:
    """The SavedModel beside the float LiteRT file: the same model to 1e-4 (the int8 file's
    own tolerance is tests/end_to_end/serving/test_precision.py's)."""
    x = digits["x_test"][:16].tolist()
    lite = start_gateway(model_dir, "--precision", "fp32")
    saved = start_gateway(model_dir, "--runtime", "savedmodel")
    try:
        a = httpx.post(lite.url + "/v1/digits:classify", json={"images": x}, timeout=30).json()
        b = httpx.post(saved.url + "/v1/digits:classify", json={"images": x}, timeout=30).json()
        metrics = httpx.get(saved.url + "/metrics").text
    finally:
        stop_gateway(lite)
        stop_gateway(saved)
    assert [p["digit"] for p in a["predictions"]] == [p["digit"] for p in b["predictions"]]
    np.testing.assert_allclose(
        [p["probabilities"] for p in a["predictions"]],
        [p["probabilities"] for p in b["predictions"]],
        atol=1e-4,
    )
    assert 'runtime="savedmodel"' in metrics


async def test_sigterm_drains_in_flight_requests_and_exits_zero(model_dir, digits) -> None:
    import signal

    srv = start_gateway(model_dir)
    body = digits["x_test"][:256].tobytes()
    async with httpx.AsyncClient(base_url=srv.url, timeout=30) as client:

        async def one() -> int:
            r = await client.post(
                "/v1/digits:classify",
                content=body,
                headers={"Content-Type": "application/octet-stream"},
            )
            return r.status_code

        # 12 × 256 images: under the 4,096-image queue bound, so nothing is refused as overload.
        in_flight = [asyncio.create_task(one()) for _ in range(12)]
        await asyncio.sleep(0.05)  # the requests are on the wire and queued
        srv.process.send_signal(signal.SIGTERM)
        statuses = await asyncio.gather(*in_flight)
    assert statuses == [200] * 12, statuses  # not one in-flight request lost
    started = time.monotonic()
    code = srv.process.wait(30)
    assert code == 0 and time.monotonic() - started < 30
    with pytest.raises(httpx.ConnectError):
        httpx.get(srv.url + "/healthz", timeout=2)  # new connections are refused
    stop_gateway(srv)
