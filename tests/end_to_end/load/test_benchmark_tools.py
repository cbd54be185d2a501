"""The benchmarks' own instruments, on real processes: the no-logic forwarder passes calls on
byte for byte in both server models, and the chain's decomposition reads a gateway's spans."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from benchmarks.support import gateway_spans, start_helper, stop
from tests.helpers.processes import Server, start_gateway, stop_gateway

METHOD = "/floor.Echo/Call"


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    proc, target = start_helper("hop_floor", "--serve-echo")
    yield target
    stop(proc)


@pytest.mark.parametrize("mode", [[], ["--sync"]], ids=["grpc.aio", "sync"])
def test_the_bare_forwarder_passes_calls_on_byte_for_byte(echo: str, mode: list[str]) -> None:
    proc, target = start_helper("bare_grpc_proxy", *mode, echo)
    try:
        with grpc.insecure_channel(target) as channel:
            call = channel.unary_unary(METHOD)  # no (de)serializers: bytes in, bytes out
            for body in (b"", os.urandom(3136), os.urandom(1 << 20)):
                assert call(body, timeout=10) == body
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def gateway(model_dir: Path) -> Iterator[Server]:
    srv = start_gateway(model_dir)
    yield srv
    stop_gateway(srv)


def test_gateway_spans_count_inference_requests_and_model_calls(gateway: Server, digits) -> None:
    before = gateway_spans(gateway.url)
    httpx.get(f"{gateway.url}/healthz", timeout=10)  # not an inference route: not counted
    for n in (1, 3):
        r = httpx.post(
            f"{gateway.url}/v1/digits:classify",
            timeout=10,
            content=digits["x_test"][:n].tobytes(),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 200
    t_req, n_req, t_call, n_call = (
        y - x for x, y in zip(before, gateway_spans(gateway.url), strict=True)
    )
    assert n_req == 2 and n_call == 2  # one model call each: they came one after the other
    assert 0 < t_call < t_req  # the model call is inside the request's span
