"""Slow and idle clients are bounded at both doors: thousands of connections that drip header
lines or send nothing are closed within the header limit (408 for a request begun), a body
that stalls is answered 408, connections past the cap are refused at once, each counted in the
metrics, while a legitimate client keeps being answered throughout."""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Iterator

import grpc
import httpx
import pytest

from mnist_contract.protos import digits_pb2, digits_pb2_grpc
from tests.helpers.processes import Server, start_gateway, stop_gateway
from tests.helpers.scrape import scraped

HEADER_LIMIT_S = 2.0
DRIPPING, IDLE = 1000, 1000
HEAD = b"POST /v1/digits:classify HTTP/1.1\r\nHost: 127.0.0.1\r\n"


@pytest.fixture(scope="module", autouse=True)
def enough_files() -> None:
    """Thousands of client sockets in this process: its soft file limit up to the hard one."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@pytest.fixture(scope="module")
def guarded(model_dir) -> Iterator[Server]:
    server = start_gateway(
        model_dir,
        "--header-timeout-seconds",
        str(HEADER_LIMIT_S),
        "--request-timeout-ms",
        "1500",
    )
    yield server
    stop_gateway(server)


def _port(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def _closed(metrics: str, reason: str, protocol: str = "rest") -> float:
    return scraped(metrics, "mnist_connections_closed_total", protocol=protocol, reason=reason)


async def _drip(port: int, stop_at: float) -> tuple[bytes, float]:
    """A request's head sent one header line a second; what came back, and when it closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HEAD)
    answer, started = b"", time.monotonic()
    while time.monotonic() < stop_at:
        try:
            chunk = await asyncio.wait_for(reader.read(4096), 1.0)
        except TimeoutError:
            writer.write(b"X-Slow: yes\r\n")
            continue
        answer += chunk
        if not chunk:
            break
    writer.close()
    return answer, time.monotonic() - started


async def _idle(port: int, stop_at: float) -> tuple[bytes, float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    try:
        answer = await asyncio.wait_for(reader.read(4096), stop_at - started)
    except TimeoutError:
        answer = b"still open"
    writer.close()
    return answer, time.monotonic() - started


async def _legitimate(url: str, stop_at: float) -> list[int]:
    statuses = []
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        while time.monotonic() < stop_at:
            r = await client.post(
                "/v1/digits:classify",
                content=bytes(784),
                headers={"Content-Type": "application/octet-stream"},
            )
            statuses.append(r.status_code)
    return statuses


async def _siege(server: Server, seconds: float) -> tuple[list, list, list[int]]:
    stop_at = time.monotonic() + seconds
    port = _port(server)
    drips = [_drip(port, stop_at) for _ in range(DRIPPING)]
    idles = [_idle(port, stop_at) for _ in range(IDLE)]
    legit = asyncio.ensure_future(_legitimate(server.url, stop_at))
    dripped = await asyncio.gather(*drips)
    idled = await asyncio.gather(*idles)
    return dripped, idled, await legit


def test_dripping_and_idle_connections_are_closed_while_clients_are_answered(guarded, figures):
    before = httpx.get(guarded.url + "/metrics").text
    dripped, idled, statuses = asyncio.run(_siege(guarded, HEADER_LIMIT_S + 6))
    assert all(answer.startswith(b"HTTP/1.1 408") for answer, _ in dripped), dripped[:3]
    assert all(answer == b"" for answer, _ in idled), idled[:3]  # closed, nothing said
    slowest = max(seconds for _, seconds in dripped + idled)
    assert slowest < HEADER_LIMIT_S + 2, slowest
    assert statuses and set(statuses) == {200}, statuses[-5:]
    after = httpx.get(guarded.url + "/metrics").text
    for reason, count in (("header_timeout", DRIPPING), ("idle", IDLE)):
        assert _closed(after, reason) - _closed(before, reason) == count, reason
    figures["slow_clients"] = {
        "connections": DRIPPING + IDLE,
        "header_limit_s": HEADER_LIMIT_S,
        "slowest_close_s": round(slowest, 2),
        "legitimate_requests_answered": len(statuses),
    }


def test_a_stalled_body_is_answered_408_and_the_connection_closed(guarded) -> None:
    async def stall() -> tuple[bytes, float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(guarded))
        started = time.monotonic()
        writer.write(HEAD + b"Content-Type: application/octet-stream\r\n")
        writer.write(b"Content-Length: 7840\r\n\r\n" + bytes(100))
        answer = await asyncio.wait_for(reader.read(), 10)  # to the end: it is closed
        writer.close()
        return answer, time.monotonic() - started

    answer, seconds = asyncio.run(stall())
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer
    assert b"connection: close" in head.lower()
    assert b"did not arrive within the gateway's limit of 1.5 s" in body
    assert seconds < 4
    metrics = httpx.get(guarded.url + "/metrics").text
    assert 'mnist_requests_refused_total{protocol="rest",reason="slow_body"} 1.0' in metrics


def test_connections_past_the_cap_are_refused_at_once_on_both_ports(model_dir) -> None:
    cap = 20
    server = start_gateway(
        model_dir, "--max-connections", str(cap), "--header-timeout-seconds", "3"
    )
    try:
        grpc_port = int(server.grpc.rsplit(":", 1)[1])

        async def hold_then_knock(port: int) -> tuple[bytes, list[bytes]]:
            held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(cap)]
            await asyncio.sleep(0.2)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            refused = await asyncio.wait_for(reader.read(), 2)
            writer.close()
            # The held ones send nothing: closed by the header limit, each of them.
            ends = [await asyncio.wait_for(r.read(), 6) for r, _ in held]
            for _, w in held:
                w.close()
            return refused, ends

        refused, ends = asyncio.run(hold_then_knock(_port(server)))
        assert refused.startswith(b"HTTP/1.1 503") and b"retry-after: 1" in refused, refused
        assert b"max_connections" in refused and ends == [b""] * cap
        _, grpc_ends = asyncio.run(hold_then_knock(grpc_port))
        assert len(grpc_ends) == cap  # gRPC's core closed the idle ones within the limit
        request = digits_pb2.ClassifyRequest()
        request.images.add(raw=bytes(784))
        with grpc.insecure_channel(server.grpc) as channel:  # and serves again
            assert digits_pb2_grpc.DigitClassifierStub(channel).Classify(request, timeout=5)
        metrics = httpx.get(server.url + "/metrics").text
        assert _closed(metrics, "over_capacity") == 1 and _closed(metrics, "idle") == cap
    finally:
        stop_gateway(server)
