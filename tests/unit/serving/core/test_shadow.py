"""Shadow traffic and per-version figures on fake runtimes: clients get the serving version's
answers, the shadow version's are compared off the request's path, and dropped under load."""

from __future__ import annotations

import asyncio
import json

from mnist_serving.core.accounting import RequestRecord
from mnist_serving.core.digits import DigitImage
from mnist_serving.lifecycle.gateway import Gateway
from mnist_serving.repositories.repository import VersionSpec
from tests.helpers.fakes import digit_image, fake_gateway, loader, sample
from tests.helpers.versions import wait_for_async


def _shadowing(tmp_path, **load) -> Gateway:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "version_policy": {"all": True},
                "labels": {"stable": 1, "shadow": 2},
                "shadow_weight": 1.0,
            }
        )
    )
    return fake_gateway(tmp_path, 1, 2, load=loader(**load), model_config_file=config)


async def _classify(gateway: Gateway, digits: list[int]) -> tuple[list[int], int]:
    images = [DigitImage(pixels=digit_image(d)) for d in digits]
    scope = gateway.accounting.request(RequestRecord("rest", "classify", "r"), None, "inference")
    async with scope as record:
        result = await gateway.core.classify(images, VersionSpec(), record)
    return [c.digit for c in result.results], result.version


async def _compared(gateway: Gateway, version: str, n: int) -> None:
    await wait_for_async(
        lambda: (
            sample(gateway, "mnist_shadow_requests_total", version=version, outcome="compared") >= n
        ),
        "the mirrors to be compared",
    )


async def test_a_disagreeing_shadow_is_seen_and_never_answers_a_client(tmp_path) -> None:
    async with _shadowing(tmp_path, shifted={2}).model_loaded() as gateway:
        for _ in range(5):
            assert await _classify(gateway, [3, 7]) == ([3, 7], 1)  # the stable answer
        await _compared(gateway, "2", 5)
        assert sample(gateway, "mnist_shadow_images_total", version="2", agreement="disagree") == 10
        assert sample(gateway, "mnist_shadow_images_total", version="2", agreement="agree") == 0
        count = "mnist_shadow_duration_seconds_count"
        assert sample(gateway, count, version="2") == 5
        # Per-version figures: only version 1 answered clients.
        assert sample(gateway, "mnist_version_requests_total", version="1", code="OK") == 5
        assert sample(gateway, "mnist_version_requests_total", version="2", code="OK") == 0
        assert sample(gateway, "mnist_version_predictions_total", version="1", digit="7") == 5
        confidence = "mnist_version_prediction_confidence_count"
        assert sample(gateway, confidence, version="1") == 10


async def test_an_agreeing_shadow_agrees(tmp_path) -> None:
    async with _shadowing(tmp_path).model_loaded() as gateway:
        for digit in range(10):
            await _classify(gateway, [digit])
        await _compared(gateway, "2", 10)
        assert sample(gateway, "mnist_shadow_images_total", version="2", agreement="agree") == 10
        delta = "mnist_shadow_confidence_delta_count"
        assert sample(gateway, delta, version="2") == 10


async def test_under_load_mirrors_are_dropped_not_clients_delayed(tmp_path) -> None:
    """A shadow version far slower than the serving one (0.2 s a call): 100 client requests
    at once are all answered while the mirrors wait in their queue of 32 or are dropped, and
    every mirror is counted one way or the other."""
    async with _shadowing(tmp_path, delays={2: 0.2}).model_loaded() as gateway:
        answers = await asyncio.gather(*(_classify(gateway, [4]) for _ in range(100)))
        assert all(a == ([4], 1) for a in answers)
        outcome = {
            name: sample(gateway, "mnist_shadow_requests_total", version="2", outcome=name)
            for name in ("compared", "dropped")
        }
        assert outcome["compared"] < 5, outcome  # the clients did not wait for the mirrors
        assert outcome["dropped"] >= 100 - 32 - 1, outcome  # the queue holds 32, one runs
