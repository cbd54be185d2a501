"""Model lifecycle on a real gateway: hot swap under load, refused versions, policy, labels,
canary split, and the status API showing every version's state."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest

from tests.helpers.processes import Server, run_gateway, start_gateway, stop_gateway
from tests.helpers.versions import LITERT_FILES, break_litert_files, publish, wait_for

OCTET = {"Content-Type": "application/octet-stream"}
PHASE = float(os.environ.get("MNIST_FAULT_PHASE_SECONDS", "1.0"))


def states(server: Server) -> dict[int, tuple[str, str]]:
    doc = httpx.get(f"{server.url}/v1/models/mnist", timeout=10).json()
    return {
        int(s["version"]): (s["state"], s["status"]["error_message"])
        for s in doc["model_version_status"]
    }


@pytest.fixture
def models(tmp_path: Path, model_dir: Path) -> Path:
    """A private models/ folder holding version 1, so tests may add and break versions."""
    shutil.copytree(model_dir / "mnist" / "1", tmp_path / "mnist" / "1")
    return tmp_path


@pytest.fixture
def watched(models: Path) -> Iterator[Server]:
    srv = start_gateway(models, "--model-poll-seconds", "0.2", "--log-level", "info")
    yield srv
    stop_gateway(srv)


def test_a_new_version_swaps_in_under_load_without_a_failed_request(
    models: Path, watched: Server, digits, figures
) -> None:
    body = digits["x_test"][:4].tobytes()
    seen: list[tuple[int, int]] = []  # (status, version) of every answer, in finishing order
    timings: list[tuple[float, float]] = []  # (start, seconds)
    marks: dict[str, float] = {}

    async def load(stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=watched.url, timeout=30) as client:

            async def worker() -> None:
                while not stop.is_set():
                    started = time.monotonic()
                    r = await client.post("/v1/digits:classify", content=body, headers=OCTET)
                    seen.append((r.status_code, r.json().get("model_version", -1)))
                    timings.append((started, time.monotonic() - started))

            await asyncio.gather(*(worker() for _ in range(8)))

    async def scenario() -> None:
        stop = asyncio.Event()
        runner = asyncio.create_task(load(stop))
        await asyncio.sleep(PHASE)
        marks["published"] = time.monotonic()
        await asyncio.to_thread(publish, models, 2, models / "mnist" / "1")
        for _ in range(300):  # until version 1 has been unloaded
            if await asyncio.to_thread(states, watched) == {1: ("END", ""), 2: ("AVAILABLE", "")}:
                break
            await asyncio.sleep(0.1)
        marks["settled"] = time.monotonic()
        await asyncio.sleep(PHASE)
        stop.set()
        await runner

    asyncio.run(scenario())
    failures = [s for s in seen if s[0] != 200]
    assert not failures, f"{len(failures)} of {len(seen)} requests failed during the swap"
    versions = [v for _, v in seen]
    assert versions[0] == 1 and versions[-1] == 2
    switched = versions.index(2)
    assert 1 not in versions[switched + 8 :], "version 1 answered after the swap settled"
    assert len(seen) > 50
    assert "loaded mnist version 2" in watched.log.read_text()

    def window(start: float, end: float) -> dict[str, float]:
        ms = [t * 1000 for s, t in timings if start <= s < end]
        return {
            "requests": len(ms),
            "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "max_ms": round(max(ms), 2),
        }

    figures["hot_swap"] = {
        "failed": len(failures),
        "requests": len(seen),
        "swap_seconds": round(marks["settled"] - marks["published"], 2),
        "before": window(0, marks["published"]),
        "during": window(marks["published"], marks["settled"]),
        "after": window(marks["settled"], float("inf")),
    }


def test_a_broken_version_is_refused_and_the_old_one_keeps_serving(
    models: Path, watched: Server, digits
) -> None:
    broken = models / "mnist" / ".staging-3"
    shutil.copytree(models / "mnist" / "1", broken)
    assert break_litert_files(broken)  # whichever file the gateway serves, it cannot load it
    broken.rename(models / "mnist" / "3")
    wait_for(lambda: states(watched).get(3, ("",))[0] == "END", "version 3 to be refused")
    state, error = states(watched)[3]
    assert state == "END" and "cannot load" in error and "Flatbuffer" in error, error
    assert states(watched)[1] == ("AVAILABLE", "")

    r = httpx.post(
        f"{watched.url}/v1/digits:classify", content=digits["x_test"][0].tobytes(), headers=OCTET
    )
    assert r.status_code == 200 and r.json()["model_version"] == 1
    pinned = httpx.post(
        f"{watched.url}/v1/models/mnist/versions/3:predict",
        json={"instances": [[[[0.0]] * 28] * 28]},
    )
    assert pinned.status_code == 404 and "state END" in pinned.json()["error"]
    metrics = httpx.get(f"{watched.url}/metrics").text
    assert "mnist_model_load_failures_total 1.0" in metrics
    assert 'mnist_model_versions{state="AVAILABLE"} 1.0' in metrics
    assert "refused version 3" in watched.log.read_text()

    # Over gRPC, with TF Serving's own messages: the refused version's state and reason.
    from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

    with grpc.insecure_channel(watched.grpc) as channel:
        answer = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
            get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "mnist"}), timeout=10
        )
    by_version = {s.version: s for s in answer.model_version_status}
    assert by_version[3].state == get_model_status_pb2.ModelVersionStatus.END
    assert by_version[3].status.error_code != 0 and by_version[3].status.error_message
    assert by_version[1].state == get_model_status_pb2.ModelVersionStatus.AVAILABLE

    # Repairing the folder (its files change) gets it tried again, and it swaps in.
    for name in LITERT_FILES:
        if (models / "mnist" / "1" / name).is_file():
            shutil.copy(models / "mnist" / "1" / name, models / "mnist" / "3" / name)
    wait_for(lambda: states(watched).get(3) == ("AVAILABLE", ""), "the repaired version 3")
    r = httpx.post(
        f"{watched.url}/v1/digits:classify", content=digits["x_test"][0].tobytes(), headers=OCTET
    )
    assert r.json()["model_version"] == 3


def test_policy_labels_and_canary_split_follow_the_config_file(models: Path, digits) -> None:
    for version in (2, 3):
        publish(models, version, models / "mnist" / "1")
    config = models / "model-config.json"
    config.write_text(
        json.dumps(
            {
                "version_policy": {"specific": [1, 2]},
                "labels": {"stable": 1, "canary": 2},
                "canary_weight": 0.25,
            }
        )
    )
    srv = start_gateway(models, "--model-config-file", str(config), "--model-poll-seconds", "0.2")
    try:
        assert {v: s for v, (s, _) in states(srv).items()} == {1: "AVAILABLE", 2: "AVAILABLE"}
        body = digits["x_test"][0].tobytes()

        def answered_by(n: int, path: str = "/v1/digits:classify") -> list[int]:
            with httpx.Client(base_url=srv.url, timeout=10) as client:
                return [
                    client.post(path, content=body, headers=OCTET).json()["model_version"]
                    for _ in range(n)
                ]

        split = answered_by(100)
        assert split.count(2) == 25 and split.count(1) == 75  # exactly the weight
        assert set(answered_by(3, "/v1/digits:classify?version=canary")) == {2}
        assert set(answered_by(3, "/v1/digits:classify?version=stable")) == {1}

        # Promote: stable moves to 2, no canary share; then roll back by moving it again.
        config.write_text(json.dumps({"version_policy": {"latest": 2}, "labels": {"stable": 2}}))
        wait_for(lambda: set(answered_by(5)) == {2}, "stable to move to version 2")
        wait_for(
            lambda: {v for v, (s, _) in states(srv).items() if s == "AVAILABLE"} == {2, 3},
            "latest:2 to serve versions 2 and 3",
        )
        config.write_text(json.dumps({"version_policy": {"latest": 2}, "labels": {"stable": 3}}))
        wait_for(lambda: set(answered_by(5)) == {3}, "stable to move to version 3")

        # A broken edit is refused with a metric; the previous config keeps serving.
        config.write_text("{not json")
        wait_for(
            lambda: "mnist_model_config_errors_total 1.0" in httpx.get(f"{srv.url}/metrics").text,
            "the bad config to be counted",
        )
        assert set(answered_by(5)) == {3}
        assert "is not valid JSON" in srv.log.read_text()
    finally:
        stop_gateway(srv)


def test_a_bad_config_file_at_start_is_a_clear_startup_error(models: Path, tmp_path) -> None:
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"labels": {"stable": 0}}))
    run = run_gateway(models, "--model-config-file", str(config), timeout=60)
    assert run.returncode == 2
    assert "label 'stable' points at version 0" in run.stderr and "Traceback" not in run.stderr
