"""The REST front door (:class:`mnist_serving.adapters.rest.front_door.FrontDoor`) and
time-based shedding, in-process on a fake model that takes a known time per call."""

from __future__ import annotations

import asyncio
import re

import httpx

from mnist_serving.settings import Settings
from tests.helpers.fakes import digit_image, loader, version_folders
from tests.helpers.gateways import in_process

OCTET = {"Content-Type": "application/octet-stream"}


def _total(metrics: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_a_refusal_is_decided_before_the_body_is_read(tmp_path) -> None:
    settings = Settings(model_dir=version_folders(tmp_path, 1), max_in_flight_requests=1)
    async with in_process(settings, load=loader(delay=0.3)) as api:
        slow = asyncio.ensure_future(
            api.post("/v1/digits:classify", content=digit_image(3).tobytes(), headers=OCTET)
        )
        await asyncio.sleep(0.1)  # the first one holds the only slot
        garbage = {"Content-Type": "application/json", "x-request-id": "trace-me-1"}
        refused = await api.post("/v1/models/mnist:predict", content=b"{not json", headers=garbage)
        # Had the body been read, this would be a 400 about the JSON.
        assert refused.status_code == 503
        assert "max_in_flight_requests" in refused.json()["error"]
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["x-request-id"] == "trace-me-1"
        assert (await slow).status_code == 200
        after = await api.post("/v1/models/mnist:predict", content=b"{not json", headers=garbage)
        assert after.status_code == 400  # with a slot free, the body is read and judged
        metrics = (await api.get("/metrics")).text
    assert _total(metrics, "mnist_requests_refused_total", reason="in_flight_limit") == 1
    assert _total(metrics, "mnist_requests_total", route="predict", code="UNAVAILABLE") == 1
    assert _total(metrics, "mnist_request_duration_seconds_count", route="predict") == 2


async def test_the_door_routes_only_inference_requests(tmp_path) -> None:
    settings = Settings(model_dir=version_folders(tmp_path, 1), max_in_flight_requests=1)
    async with in_process(settings, load=loader(delay=0.3)) as api:
        slow = asyncio.ensure_future(
            api.post("/v2/models/mnist/infer", content=b"{}", headers={"Content-Type": "x/y"})
        )
        await asyncio.sleep(0.05)
        # Not inference routes: answered whatever the load.
        assert (await api.get("/v2/models/mnist/ready")).status_code == 200
        assert (await api.post("/v1/models/mnist:classify", content=b"")).status_code == 404
        assert (await api.post("/v1/models/a/b:predict", content=b"")).status_code == 404
        await slow


async def test_a_standing_queue_is_shed_with_503_and_every_request_counted(tmp_path) -> None:
    # Each model call takes 20 ms and batches hold one image, so 24 callers re-sending at
    # once keep the admitted ones waiting far past a 2 ms target.
    settings = Settings(
        model_dir=version_folders(tmp_path, 1),
        queue_target_ms=2,
        max_batch_size=1,
        max_enqueued_batches=64,
        max_images_per_request=1,
    )
    body = digit_image(5).tobytes()
    statuses: list[int] = []
    errors: list[str] = []

    async def caller(api: httpx.AsyncClient, until: float) -> None:
        loop = asyncio.get_running_loop()
        while loop.time() < until:
            answer = await api.post("/v1/digits:classify", content=body, headers=OCTET)
            statuses.append(answer.status_code)
            if answer.status_code != 200:
                errors.append(answer.json()["error"])
                assert answer.headers["retry-after"] == "1"

    async with in_process(settings, load=loader(delay=0.02)) as api:
        until = asyncio.get_running_loop().time() + 1.5
        await asyncio.gather(*(caller(api, until) for _ in range(24)))
        metrics = (await api.get("/metrics")).text
        # Once the load is gone, a lone request is admitted at once.
        lone = await api.post("/v1/digits:classify", content=body, headers=OCTET)
    assert set(statuses) == {200, 503}, statuses
    assert all(re.search(r"2 ms queue target \(queue_target_ms\)", e) for e in errors)
    shed = _total(metrics, "mnist_requests_refused_total", reason="queue_delay")
    assert shed == statuses.count(503)
    assert _total(metrics, "mnist_requests_total", route="classify") == len(statuses)
    assert _total(metrics, "mnist_requests_total", code="OK") == statuses.count(200)
    assert lone.status_code == 200
