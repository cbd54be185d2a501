"""The automatic rollout in a gateway of fake runtimes: a good candidate promoted, a bad one
stopped in shadow, a slow one rolled back on latency, the state kept across a restart, an
operator's commands. Ticks are driven by the test; the gates' thresholds are small so a few
dozen requests decide."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnist_serving.core.accounting import RequestRecord
from mnist_serving.core.digits import DigitImage
from mnist_serving.errors import Conflict
from mnist_serving.lifecycle.gateway import Gateway
from mnist_serving.repositories.repository import VersionSpec
from tests.helpers.fakes import digit_image, fake_gateway, loader, sample
from tests.helpers.versions import wait_for_async

QUICK = {
    "shadow_weight": 1.0,
    "canary_steps": [0.5],
    "shadow_images": 20,
    "step_requests": 10,
    "min_step_seconds": 0,
}


def _gateway(tmp_path: Path, **load) -> Gateway:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"version_policy": {"latest": 1}, "rollout": QUICK}))
    return fake_gateway(tmp_path, 1, load=loader(**load), model_config_file=config, rollout="auto")


async def _requests(gateway: Gateway, n: int) -> list[int]:
    """``n`` requests naming no version; the versions that answered."""
    answered = []
    for i in range(n):
        scope = gateway.accounting.request(
            RequestRecord("rest", "classify", f"r{i}"), None, "inference"
        )
        async with scope as record:
            result = await gateway.core.classify(
                [DigitImage(pixels=digit_image(i % 10))], VersionSpec(), record
            )
        answered.append(result.version)
    return answered


async def _publish(gateway: Gateway, tmp_path: Path, version: int) -> None:
    (tmp_path / "mnist" / str(version)).mkdir(parents=True)
    await gateway.core.repository.sync()  # type: ignore[attr-defined]


def _phase(gateway: Gateway) -> str:
    assert gateway.rollout is not None
    return str(gateway.rollout.status()["phase"])


async def _through_shadow(gateway: Gateway) -> None:
    assert gateway.rollout is not None
    gateway.rollout.tick()
    assert _phase(gateway) == "shadow"
    assert set(await _requests(gateway, 25)) == {1}  # clients: stable only
    await wait_for_async(
        lambda: (
            sample(gateway, "mnist_shadow_images_total", version="2", agreement="agree")
            + sample(gateway, "mnist_shadow_images_total", version="2", agreement="disagree")
            >= 20
        ),
        "the mirrors",
    )
    gateway.rollout.tick()


async def test_a_good_candidate_goes_through_every_step_and_is_promoted(tmp_path) -> None:
    async with _gateway(tmp_path).model_loaded() as gateway:
        assert gateway.rollout is not None
        await _publish(gateway, tmp_path, 2)
        await _through_shadow(gateway)
        assert _phase(gateway) == "canary"
        answered = await _requests(gateway, 40)
        assert answered.count(2) == 20  # exactly the step's share
        gateway.rollout.tick()
        status = gateway.rollout.status()
        assert (status["phase"], status["stable"]) == ("promoted", 2)
        assert set(await _requests(gateway, 5)) == {2}
        assert sample(gateway, "mnist_rollout_decisions_total", decision="promoted") == 1


async def test_a_candidate_answering_other_digits_is_stopped_in_shadow(tmp_path) -> None:
    async with _gateway(tmp_path, shifted={2}).model_loaded() as gateway:
        await _publish(gateway, tmp_path, 2)
        await _through_shadow(gateway)
        status = gateway.rollout.status()  # type: ignore[union-attr]
        assert status["phase"] == "rolled_back" and "agreement" in status["reason"]
        assert set(await _requests(gateway, 20)) == {1}  # no client ever got version 2
        assert sample(gateway, "mnist_rollout_decisions_total", decision="rolled_back") == 1


async def test_a_slow_candidate_is_rolled_back_on_latency(tmp_path) -> None:
    async with _gateway(tmp_path, delays={2: 0.05}).model_loaded() as gateway:
        await _publish(gateway, tmp_path, 2)
        await _through_shadow(gateway)  # the same digits: it agrees
        assert _phase(gateway) == "canary"
        await _requests(gateway, 50)  # 25 on the candidate: past min_observations
        gateway.rollout.tick()  # type: ignore[union-attr]
        status = gateway.rollout.status()  # type: ignore[union-attr]
        assert status["phase"] == "rolled_back" and "p99_latency_ratio" in status["reason"]
        assert set(await _requests(gateway, 10)) == {1}


async def test_the_state_survives_a_restart_at_the_same_step(tmp_path) -> None:
    async with _gateway(tmp_path).model_loaded() as gateway:
        await _publish(gateway, tmp_path, 2)
        await _through_shadow(gateway)
        assert _phase(gateway) == "canary"
    async with _gateway(tmp_path).model_loaded() as again:
        status = again.rollout.status()  # type: ignore[union-attr]
        assert (status["phase"], status["step"], status["candidate"]) == ("canary", 0, 2)
        assert set(await _requests(again, 20)) == {1, 2}  # the split resumes


async def test_an_operator_pauses_promotes_or_aborts(tmp_path) -> None:
    async with _gateway(tmp_path).model_loaded() as gateway:
        driver = gateway.rollout
        assert driver is not None
        with pytest.raises(Conflict, match="no rollout in progress"):
            driver.command("pause")
        await _publish(gateway, tmp_path, 2)
        driver.tick()
        assert driver.command("pause")["paused"] is True
        await _requests(gateway, 25)
        driver.tick()
        assert _phase(gateway) == "shadow"  # held while paused
        assert driver.command("abort")["phase"] == "rolled_back"
        assert set(await _requests(gateway, 5)) == {1}


async def test_the_rest_routes_need_the_admin_scope_to_steer(tmp_path) -> None:
    import httpx

    keys = tmp_path / "keys.txt"
    keys.write_text("app:app-key-0123456789abcdef\nops:ops-key-0123456789abcdef admin\n")
    async with _gateway_with_keys(tmp_path, keys).model_loaded() as gateway:
        transport = httpx.ASGITransport(app=gateway.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            app = {"Authorization": "Bearer app-key-0123456789abcdef"}
            ops = {"Authorization": "Bearer ops-key-0123456789abcdef"}
            status = await client.get("/v1/models/mnist/rollout", headers=app)
            assert status.status_code == 200 and status.json()["phase"] == "stable"
            refused = await client.post("/v1/models/mnist/rollout:pause", headers=app)
            assert refused.status_code == 403 and "lacks the admin scope" in refused.json()["error"]
            idle = await client.post("/v1/models/mnist/rollout:pause", headers=ops)
            assert idle.status_code == 409 and "no rollout in progress" in idle.json()["error"]
            await _publish(gateway, tmp_path, 2)
            gateway.rollout.tick()  # type: ignore[union-attr]
            paused = await client.post("/v1/models/mnist/rollout:pause", headers=ops)
            assert paused.status_code == 200 and paused.json()["paused"] is True
            wrong = await client.post("/v1/models/mnist/rollout:explode", headers=ops)
            assert wrong.status_code == 400
            # The admin key may not classify: inference is a scope of its own.
            octet = {"Content-Type": "application/octet-stream", **ops}
            classify = await client.post("/v1/digits:classify", content=bytes(784), headers=octet)
            assert classify.status_code == 403


async def test_without_any_key_nobody_may_steer(tmp_path) -> None:
    import httpx

    async with _gateway(tmp_path).model_loaded() as gateway:
        transport = httpx.ASGITransport(app=gateway.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            refused = await client.post("/v1/models/mnist/rollout:promote")
            assert refused.status_code == 403 and "no key is configured" in refused.json()["error"]


def _gateway_with_keys(tmp_path: Path, keys: Path) -> Gateway:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"version_policy": {"latest": 1}, "rollout": QUICK}))
    return fake_gateway(tmp_path, 1, model_config_file=config, rollout="auto", api_keys_file=keys)
