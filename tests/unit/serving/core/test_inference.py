"""The core on fake runtimes: no sockets, no TensorFlow, no model file."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from mnist_serving.core.accounting import RequestRecord
from mnist_serving.core.digits import DigitImage
from mnist_serving.deadlines import RequestLimit
from mnist_serving.errors import (
    DeadlineExceeded,
    InvalidInput,
    NotFound,
    ServingError,
)
from mnist_serving.repositories.repository import VersionSpec
from tests.helpers.fakes import (
    FakeRuntime,
    digit_image,
    fake_gateway,
    loader,
    sample,
)


async def test_classify_answers_each_image_and_counts_once(tmp_path) -> None:
    gateway = fake_gateway(tmp_path)
    async with gateway.model_loaded():
        core = gateway.core
        images = [DigitImage(pixels=digit_image(d)) for d in (3, 7, 0)]
        scope = gateway.accounting.request(
            RequestRecord("rest", "classify", "r1"), None, "inference"
        )
        async with scope as record:
            result = await core.classify(images, VersionSpec(), record)
        assert [c.digit for c in result.results] == [3, 7, 0] and result.version == 1
        labels = {"protocol": "rest", "route": "classify", "code": "OK"}
        assert sample(gateway, "mnist_requests_total", **labels) == 1
        assert sample(gateway, "mnist_images_total", protocol="rest") == 3
        assert sample(gateway, "mnist_predictions_total", digit="7") == 1


async def test_predict_checks_the_signature_shape_and_values(tmp_path) -> None:
    async with fake_gateway(tmp_path).model_loaded() as gateway:
        core = gateway.core
        flat = np.zeros((2, 784), np.float32)
        result = await core.predict("predict_images", {"images": flat}, VersionSpec())
        assert result.outputs["scores"].shape == (2, 10)
        with pytest.raises(InvalidInput, match=r"must have shape \[N,28,28,1\]"):
            await core.predict("", {"images": flat}, VersionSpec())
        with pytest.raises(InvalidInput, match="not found in signature def"):
            await core.predict("other", {"images": flat}, VersionSpec())
        bad = np.full((1, 784), np.nan, np.float32)
        with pytest.raises(InvalidInput, match="NaN or infinity"):
            await core.predict("predict_images", {"images": bad}, VersionSpec())
        with pytest.raises(InvalidInput, match="an empty batch"):
            await core.predict("predict_images", {"images": flat[:0]}, VersionSpec())


async def test_a_slow_model_meets_the_time_limit(tmp_path) -> None:
    gateway = fake_gateway(tmp_path, load=loader(delay=0.3), request_timeout_ms=50)
    async with gateway.model_loaded():
        core = gateway.core
        work = core.classify([DigitImage(pixels=digit_image(1))], VersionSpec())
        limit = RequestLimit(0.05)
        with pytest.raises(DeadlineExceeded, match="request_timeout_ms"):
            await limit.bound(work)
        with pytest.raises(DeadlineExceeded, match="caller's deadline"):
            await limit.bound(asyncio.sleep(1), caller_deadline_s=0.01)


async def test_a_failing_model_fails_its_request_with_no_detail(tmp_path) -> None:
    async with fake_gateway(tmp_path, load=loader(fail_calls=True)).model_loaded() as gateway:
        core = gateway.core
        with pytest.raises(ServingError, match=r"model call failed \(RuntimeError\)") as info:
            await core.classify([DigitImage(pixels=digit_image(1))], VersionSpec())
        assert info.value.code == "INTERNAL" and "fake" not in info.value.message


async def test_readiness_follows_the_repository_and_the_drain(tmp_path) -> None:
    gateway = fake_gateway(tmp_path)
    seen: list[bool] = []
    gateway.core.readiness.subscribe(seen.append)
    assert gateway.core.readiness_report() == {"ready": False, "reason": "model is loading"}
    async with gateway.model_loaded():
        core = gateway.core
        assert core.readiness_report()["ready"] is True
        core.readiness.drain()
        assert core.readiness_report() == {"ready": False, "reason": "shutting down"}
    assert seen == [False, True, False]


async def test_other_models_and_unknown_versions_get_tf_servings_words(tmp_path) -> None:
    async with fake_gateway(tmp_path).model_loaded() as gateway:
        core = gateway.core
        with pytest.raises(NotFound, match=r"Servable not found for request: Specific\(other, 2\)"):
            core.require_model("other", VersionSpec(version=2))
        with pytest.raises(InvalidInput, match="model name is empty"):
            core.require_model("", VersionSpec())
        with pytest.raises(NotFound, match=r"Specific\(mnist, 9\)"):
            core.metadata(VersionSpec(version=9))


async def test_a_batch_serves_many_requests_and_each_gets_its_own_answer(tmp_path) -> None:
    made: list[FakeRuntime] = []
    gateway = fake_gateway(
        tmp_path, load=loader(delay=0.02, made=made), batch_timeout_micros=20_000
    )
    async with gateway.model_loaded():
        core = gateway.core
        digits = [d % 10 for d in range(24)]
        answers = await asyncio.gather(
            *(core.classify([DigitImage(pixels=digit_image(d))], VersionSpec()) for d in digits)
        )
        assert [a.results[0].digit for a in answers] == digits
        assert max(made[0].calls) > 1  # requests were merged into shared model calls
