"""The REST adapter in-process (ASGI, no sockets) on a fake runtime."""

from __future__ import annotations

from mnist_serving.settings import Settings
from tests.helpers.fakes import digit_image, loader, version_folders
from tests.helpers.gateways import in_process


async def test_routes_answer_from_the_table(tmp_path) -> None:
    settings = Settings(model_dir=version_folders(tmp_path, 1), version_labels={"stable": 1})
    async with in_process(settings, load=loader()) as api:
        ready = await api.get("/readyz")
        assert ready.json() == {
            "ready": True,
            "model": "mnist",
            "versions": [1],
            "runtime": "fake",
            "precision": "fp32",
        }
        frames = b"".join(digit_image(d).tobytes() for d in (4, 9))
        octet = {"Content-Type": "application/octet-stream"}
        answer = await api.post("/v1/digits:classify?top_k=2", content=frames, headers=octet)
        assert [p["digit"] for p in answer.json()["predictions"]] == [4, 9]
        status = await api.get("/v1/models/mnist/labels/stable")
        assert status.json()["model_version_status"][0]["state"] == "AVAILABLE"
        other = await api.get("/v1/models/other/versions/3")
        assert other.status_code == 404 and "Specific(other, 3)" in other.json()["error"]
        wrong = await api.get("/v1/models/mnist:predict")
        assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
        missing = await api.get("/nowhere")
        assert missing.status_code == 404 and missing.json()["error"].startswith("no such route")
        metrics = await api.get("/metrics")
        assert (
            'mnist_requests_total{code="OK",protocol="rest",route="classify"} 1.0' in metrics.text
        )


async def test_operational_routes_need_a_key_unless_open(tmp_path) -> None:
    key = "ci-key-0123456789abcdef"
    settings = Settings(
        model_dir=version_folders(tmp_path, 1), api_keys={"ci": key}, open_routes=["healthz"]
    )
    async with in_process(settings, load=loader()) as api:
        assert (await api.get("/healthz")).status_code == 200
        assert (await api.get("/metrics")).status_code == 401
        keyed = await api.get("/metrics", headers={"Authorization": f"Bearer {key}"})
        assert keyed.status_code == 200


def _v2_body(*digits: int) -> dict:
    frames = [digit_image(d).ravel().tolist() for d in digits]
    return {
        "inputs": [
            {"name": "images", "datatype": "UINT8", "shape": [len(digits), 784], "data": frames}
        ]
    }


async def test_v2_infer_shares_the_core_and_its_refusals(tmp_path) -> None:
    import asyncio

    key = {"X-API-Key": "ci-key-0123456789abcdef"}
    settings = Settings(
        model_dir=version_folders(tmp_path, 1),
        max_in_flight_requests=1,
        api_keys={"ci": key["X-API-Key"]},
        rate_limit_per_second=0.01,
        rate_limit_burst=3,
    )
    async with in_process(settings, load=loader(delay=0.3)) as api:
        answer = await api.post("/v2/models/mnist/infer", json=_v2_body(4, 9), headers=key)
        (output,) = answer.json()["outputs"]
        assert [
            max(range(10), key=row.__getitem__)
            for row in (output["data"][:10], output["data"][10:])
        ] == [4, 9]
        # Two at once: the second meets the in-flight cap (the fake model takes 0.3 s).
        first, second = await asyncio.gather(
            api.post("/v2/models/mnist/infer", json=_v2_body(1), headers=key),
            api.post("/v2/models/mnist/infer", json=_v2_body(2), headers=key),
        )
        assert sorted((first.status_code, second.status_code)) == [200, 503]
        refused = first if first.status_code == 503 else second
        assert (
            "max_in_flight_requests" in refused.json()["error"] and refused.headers["retry-after"]
        )
        # Refused at the door, before the key's rate is looked at: it spent none of the burst.
        third = await api.post("/v2/models/mnist/infer", json=_v2_body(3), headers=key)
        assert third.status_code == 200
        limited = await api.post("/v2/models/mnist/infer", json=_v2_body(3), headers=key)
        assert limited.status_code == 429 and limited.headers["retry-after"]
        metrics = (await api.get("/metrics", headers=key)).text
        assert (
            'mnist_requests_refused_total{protocol="v2_rest",reason="in_flight_limit"} 1.0'
            in metrics
        )
        assert (
            'mnist_requests_refused_total{protocol="v2_rest",reason="rate_limited"} 1.0' in metrics
        )
