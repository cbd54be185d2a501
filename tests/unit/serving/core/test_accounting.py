"""Request accounting on fake runtimes: keys, rate and admission at the door, each request counted once."""

from __future__ import annotations

import pytest

from mnist_serving.core.accounting import RequestRecord
from mnist_serving.errors import (
    TooManyInFlight,
    Unauthenticated,
)
from tests.helpers.fakes import fake_gateway, sample


def _request(gateway, protocol: str, route: str):
    """An inference request's scope, as an adapter opens it (no credential)."""
    return gateway.accounting.request(RequestRecord(protocol, route, "r1"), None, "inference")


async def test_refusals_are_counted_by_reason_and_code(tmp_path) -> None:
    gateway = fake_gateway(tmp_path, api_keys={"ci": "ci-key-0123456789abcdef"})
    async with gateway.model_loaded():
        with pytest.raises(Unauthenticated):
            async with _request(gateway, "grpc", "predict"):
                pass
        assert (
            sample(
                gateway, "mnist_requests_refused_total", protocol="grpc", reason="unauthenticated"
            )
            == 1
        )
        labels = {"protocol": "grpc", "route": "predict", "code": "UNAUTHENTICATED"}
        assert sample(gateway, "mnist_requests_total", **labels) == 1


async def test_past_the_in_flight_cap_requests_are_refused_at_once(tmp_path) -> None:
    async with fake_gateway(tmp_path, max_in_flight_requests=1).model_loaded() as gateway:
        async with _request(gateway, "rest", "classify"):
            with pytest.raises(TooManyInFlight):
                async with _request(gateway, "rest", "classify"):
                    pass
        async with _request(gateway, "rest", "classify"):  # the slot is free again
            pass
