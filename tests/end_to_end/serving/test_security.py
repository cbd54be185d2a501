"""API keys and per-key rate limits, on REST (in-process) and gRPC (a real server)."""

from __future__ import annotations

import grpc
import httpx
import numpy as np
import pytest

from mnist_contract.protos import digits_pb2, digits_pb2_grpc
from mnist_serving.build import build_gateway
from mnist_serving.settings import Settings, SettingsError
from tests.helpers.gateways import in_process
from tests.helpers.metrics import samples_of
from tests.helpers.processes import start_gateway, stop_gateway
from tests.helpers.versions import wait_for

ALICE = "alice-key-0123456789abcdef"
BOB = "bob-key-0123456789abcdef00"


def test_a_bad_key_file_stops_the_server_with_a_message(model_dir, tmp_path) -> None:
    with pytest.raises(SettingsError, match="cannot read API keys"):
        build_gateway(Settings(model_dir=model_dir, api_keys_file=tmp_path / "nope"))


async def test_rest_requires_a_key_and_limits_its_rate(model_dir, digits) -> None:
    settings = Settings(
        model_dir=model_dir,
        api_keys={"alice": ALICE, "bob": BOB},
        rate_limit_per_second=0.5,
        rate_limit_burst=2,
        open_routes=["healthz"],
    )
    body = digits["x_test"][:1].tobytes()
    octet = {"Content-Type": "application/octet-stream"}
    async with in_process(settings) as c:
        missing = await c.post("/v1/digits:classify", content=body, headers=octet)
        assert missing.status_code == 401 and missing.json() == {
            "error": "missing API key (send Authorization: Bearer <key>)"
        }
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = await c.post(
            "/v1/digits:classify", content=body, headers={**octet, "X-API-Key": "nope"}
        )
        assert wrong.status_code == 401 and wrong.json() == {"error": "invalid API key"}
        for _ in range(2):
            ok = await c.post(
                "/v1/digits:classify",
                content=body,
                headers={**octet, "Authorization": f"Bearer {ALICE}"},
            )
            assert ok.status_code == 200
        limited = await c.post(
            "/v1/digits:classify",
            content=body,
            headers={**octet, "Authorization": f"Bearer {ALICE}"},
        )
        assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
        other = await c.post(
            "/v1/models/mnist:predict",
            json={"instances": np.zeros((1, 28, 28, 1)).tolist()},
            headers={"X-API-Key": BOB},
        )
        assert other.status_code == 200  # each key has its own bucket
        assert (await c.get("/healthz")).status_code == 200  # open
        assert (await c.get("/readyz")).status_code == 401  # not listed as open
        assert (await c.get("/readyz", headers={"X-API-Key": BOB})).status_code == 200
        metrics = (await c.get("/metrics", headers={"X-API-Key": BOB})).text
    assert 'mnist_requests_refused_total{protocol="rest",reason="rate_limited"} 1.0' in metrics
    assert 'mnist_requests_refused_total{protocol="rest",reason="unauthenticated"} 2.0' in metrics
    assert ALICE not in metrics and BOB not in metrics


def test_grpc_requires_a_key_in_metadata_and_limits_its_rate(model_dir, digits) -> None:
    """Refusals carry the request id in their trailing metadata, as answers do, and a rate
    limit's Retry-After beside it."""
    server = start_gateway(
        model_dir,
        env={
            "MNIST_API_KEYS": f'{{"alice": "{ALICE}"}}',
            "MNIST_RATE_LIMIT_PER_SECOND": "0.5",
            "MNIST_RATE_LIMIT_BURST": "1",
        },
    )
    try:
        with grpc.insecure_channel(server.grpc) as channel:
            stub = digits_pb2_grpc.DigitClassifierStub(channel)
            request = digits_pb2.ClassifyRequest()
            request.images.add(raw=digits["x_test"][0].tobytes())
            with pytest.raises(grpc.RpcError) as info:
                stub.Classify(request, timeout=5, metadata=(("x-request-id", "no-key-1"),))
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert dict(info.value.trailing_metadata())["x-request-id"] == "no-key-1"
            keyed = (("authorization", f"Bearer {ALICE}"),)
            answer, call = stub.Classify.with_call(request, timeout=5, metadata=keyed)
            assert answer.results[0].digit == digits["y_test"][0]
            assert len(dict(call.trailing_metadata())["x-request-id"]) == 32
            with pytest.raises(grpc.RpcError) as info:
                stub.Classify(request, timeout=5, metadata=(*keyed, ("x-request-id", "fast-2")))
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            trailing = dict(info.value.trailing_metadata())
            assert trailing["x-request-id"] == "fast-2" and trailing["retry-after"] == "2"
        log = server.log.read_text()
    finally:
        stop_gateway(server)
    assert ALICE not in log


def _statuses(url: str, key: str, calls: int = 24) -> set[int]:
    """Answers to ``calls`` requests, each on a connection of its own (so the kernel spreads
    them over the workers)."""
    found = set()
    for _ in range(calls):
        answer = httpx.get(
            f"{url}/v1/models/mnist",
            headers={"Authorization": f"Bearer {key}", "Connection": "close"},
        )
        found.add(answer.status_code)
    return found


def test_keys_rotate_on_every_worker_without_a_restart(model_dir, tmp_path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"alice:{ALICE}\n")
    server = start_gateway(
        model_dir,
        "--workers",
        "2",
        "--api-keys-file",
        str(keys),
        "--model-poll-seconds",
        "0.2",
        "--log-level",
        "info",
    )
    try:
        assert _statuses(server.url, ALICE) == {200} and _statuses(server.url, BOB) == {401}
        keys.write_text(f"bob:{BOB}\n")  # bob is added, alice revoked
        wait_for(lambda: _statuses(server.url, BOB, 8) == {200}, "the new key", 10)
        assert _statuses(server.url, BOB) == {200} and _statuses(server.url, ALICE) == {401}
        keys.write_text(f"bob:{BOB}\ncarol:short\n")  # unusable: bob stays, nothing else
        wait_for(lambda: "keeping the 1 API keys in force" in server.log.read_text(), "the log", 10)
        assert _statuses(server.url, BOB) == {200}
        metrics = httpx.get(f"{server.url}/metrics").text
        errors = samples_of(metrics)[("mnist_api_key_file_errors_total", ())]
        assert 1 <= errors <= 2  # each worker that read the bad edit counts it once
        log = server.log.read_text()
        assert "API keys reloaded" in log and "added: bob; removed: alice" in log
        assert ALICE not in log and BOB not in log and "short" not in log
    finally:
        stop_gateway(server)
