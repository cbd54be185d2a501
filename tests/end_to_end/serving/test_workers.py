"""``mnist-serve --workers N``: real gateways of two worker processes on free ports.

Connections are spread by the kernel (SO_REUSEPORT), so a test that needs both workers to
answer opens a new connection per request and checks, from /proc, that both did work.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mnist_serving.lifecycle.cpus import usable_cpus
from tests.helpers.processes import Server, cpu_seconds, run_gateway, start_gateway, stop_gateway
from tests.helpers.scrape import scraped
from tests.helpers.traffic import Traffic
from tests.helpers.versions import publish, wait_for

OCTET = {"Content-Type": "application/octet-stream"}
CLASSIFY = "/v1/digits:classify"


def worker_pids(server: Server) -> list[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return sorted(int(child) for child in children if _is_worker(int(child)))


def _is_worker(pid: int) -> bool:
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):  # it exited since it was listed
        return False


async def send_on_new_connections(
    url: str, body: bytes, count: int, at_once: int = 8, **extra: str
) -> list[httpx.Response]:
    """``count`` requests, ``at_once`` at a time, each on a connection of its own (so the
    kernel picks a worker for each)."""
    limits = httpx.Limits(max_keepalive_connections=0, max_connections=at_once)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        gate = asyncio.Semaphore(at_once)

        async def one() -> httpx.Response:
            async with gate:
                return await client.post(CLASSIFY, content=body, headers={**OCTET, **extra})

        return await asyncio.gather(*(one() for _ in range(count)))


def scrape(url: str, path: str = "/metrics") -> str:
    # A new connection each time: any worker may answer.
    with httpx.Client(
        base_url=url, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)
    ) as c:
        return c.get(path).text


@pytest.fixture
def two(model_dir: Path) -> Iterator[Server]:
    srv = start_gateway(model_dir, "--workers", "2", "--log-level", "info")
    yield srv
    stop_gateway(srv)


def test_every_scrape_of_any_worker_counts_exactly_the_requests_sent(two: Server, digits) -> None:
    pids = worker_pids(two)
    assert len(pids) == 2
    before = {pid: cpu_seconds(pid) for pid in pids}
    sent = 300
    answers = asyncio.run(send_on_new_connections(two.url, digits["x_test"][0].tobytes(), sent))
    assert [a.status_code for a in answers] == [200] * sent
    worked = {pid: cpu_seconds(pid) - before[pid] for pid in pids}
    assert all(ticks > 0 for ticks in worked.values()), f"one worker did nothing: {worked}"
    route = {"code": "OK", "protocol": "rest", "route": "classify"}
    for _ in range(10):
        text = scrape(two.url)
        assert scraped(text, "mnist_requests_total", **route) == sent
        assert scraped(text, "mnist_request_duration_seconds_count", **route) == sent
        assert scraped(text, "mnist_images_total", protocol="rest") == sent
        assert scraped(text, "mnist_batch_size_count") >= 1
        assert scraped(text, "mnist_prediction_confidence_count") == sent  # the bulk histogram
        assert scraped(text, "mnist_requests_in_flight", protocol="rest", route="classify") == 0
        assert scraped(text, "mnist_model_ready") == 1  # not 2: readiness is not summed
        assert text.count("mnist_model_info{") == 1
        assert scraped(text, "mnist_workers") == 2
        for worker in ("0", "1", "supervisor"):
            assert scraped(text, "process_resident_memory_bytes", worker=worker) > 0
        stats = json.loads(scrape(two.url, "/v1/stats"))
        assert stats["requests"] == sent  # the demo page's panel covers both workers
    # TF Serving's names, derived from the merged counters, are whole too.
    predicts = 40
    instances = {"instances": [digits["x_test"][0].reshape(28, 28, 1).tolist()]}
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=two.url, timeout=30, limits=limits) as client:
        for _ in range(predicts):
            assert client.post("/v1/models/mnist:predict", json=instances).status_code == 200
    for _ in range(10):
        tf_view = scrape(two.url, "/monitoring/prometheus/metrics")
        assert (
            scraped(tf_view, ":tensorflow:serving:request_count", model_name="mnist", status="OK")
            == predicts
        )


def test_the_canary_share_and_a_rate_limit_hold_for_the_whole_gateway(
    model_dir: Path, tmp_path: Path, digits
) -> None:
    models = tmp_path / "models"
    shutil.copytree(model_dir / "mnist" / "1", models / "mnist" / "1")
    publish(models, 2, models / "mnist" / "1")
    keys = tmp_path / "keys"
    keys.write_text("limited:" + "k" * 24 + "\nfree:" + "f" * 24 + "\n")
    srv = start_gateway(
        models,
        "--workers",
        "2",
        "--version-labels",
        '{"stable": 1, "canary": 2}',
        "--canary-weight",
        "0.25",
        "--version-policy",
        "all",
        "--api-keys-file",
        str(keys),
        "--rate-limit-per-second",
        "1",
        "--rate-limit-burst",
        "10",
    )
    try:
        body = digits["x_test"][0].tobytes()
        free = {"Authorization": "Bearer " + "f" * 24}
        # A burst of 10 per key: the "free" key's 10, then refusals, the same over two workers.
        first = asyncio.run(send_on_new_connections(srv.url, body, 10, **free))
        assert [a.status_code for a in first] == [200] * 10
        started = time.monotonic()
        limited = asyncio.run(
            send_on_new_connections(srv.url, body, 40, Authorization="Bearer " + "k" * 24)
        )
        refill = int(time.monotonic() - started) + 1  # 1 token per second while they were sent
        ok = sum(a.status_code == 200 for a in limited)
        assert 10 <= ok <= 10 + refill, f"{ok} of 40 admitted with a burst of 10"
        assert all(a.status_code == 429 for a in limited if a.status_code != 200)
    finally:
        stop_gateway(srv)
    # The canary's 12.5% counted over both workers: one request in 8, every 8th exactly, in
    # the order they arrive whichever worker takes each (one credit per worker would not).
    config = tmp_path / "models.json"
    config.write_text(
        json.dumps(
            {
                "version_policy": {"all": True},
                "labels": {"stable": 1, "canary": 2},
                "canary_weight": 0.125,
            }
        )
    )
    srv = start_gateway(
        models,
        "--workers",
        "2",
        "--model-config-file",
        str(config),
        "--model-poll-seconds",
        "0.2",
        "--log-level",
        "info",
    )
    try:
        answers = asyncio.run(send_on_new_connections(srv.url, body, 160, at_once=1))
        versions = [a.json()["model_version"] for a in answers]
        assert [i for i, v in enumerate(versions) if v == 2] == list(range(7, 160, 8))
        # An edit of the config file reaches every worker; the share holds across them again.
        config.write_text(
            json.dumps(
                {
                    "version_policy": {"all": True},
                    "labels": {"stable": 1, "canary": 2},
                    "canary_weight": 0.5,
                }
            )
        )
        wait_for(
            lambda: srv.log.read_text().count("canary weight 0.5") == 2,
            "both workers reading the new config",
            20,
        )
        answers = asyncio.run(send_on_new_connections(srv.url, body, 40, at_once=1))
        assert [a.json()["model_version"] for a in answers].count(2) == 20
    finally:
        stop_gateway(srv)


def test_a_killed_worker_fails_only_its_requests_and_comes_back(two: Server, digits) -> None:
    victim, survivor = worker_pids(two)
    with Traffic.rest(two.url, digits["x_test"][0].tobytes(), workers=8) as traffic:
        time.sleep(1.0)
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        wait_for(
            lambda: len(worker_pids(two)) == 2 and victim not in worker_pids(two),
            "the worker's replacement",
            20,
        )
        wait_for(lambda: scraped(scrape(two.url), "mnist_workers") == 2, "two workers ready", 20)
        back = time.monotonic()
        time.sleep(1.0)
    failed = [o for o in traffic.outcomes if not o.ok]
    # Only requests on the killed worker's connections (8 at most in flight) fail.
    assert len(failed) <= 8, failed
    assert all(killed <= o.started + o.seconds for o in failed)
    served_meanwhile = [o for o in traffic.between(killed + 0.1, back) if o.ok]
    assert served_meanwhile, "the surviving worker stopped serving"
    assert all(o.ok for o in traffic.between(back + 0.2))
    assert survivor in worker_pids(two)
    text = scrape(two.url)
    assert scraped(text, "mnist_worker_restarts_total") == 1
    # The dead worker's in-flight gauge is gone with it: nothing is left "in flight".
    assert scraped(text, "mnist_requests_in_flight", protocol="rest", route="classify") == 0
    log = two.log.read_text()
    assert f"worker 0 (pid {victim}) killed by SIGKILL; restarting it" in log or (
        f"worker 1 (pid {victim}) killed by SIGKILL; restarting it" in log
    )


@pytest.mark.parametrize("how", ["SIGTERM", "Ctrl-C"])
async def test_a_stop_drains_both_workers_without_a_failed_request(model_dir, digits, how) -> None:
    srv = start_gateway(model_dir, "--workers", "2")
    pids = worker_pids(srv)
    body = digits["x_test"][:256].tobytes()
    limits = httpx.Limits(max_keepalive_connections=0, max_connections=16)
    before = {pid: cpu_seconds(pid) for pid in pids}
    async with httpx.AsyncClient(base_url=srv.url, timeout=30, limits=limits) as client:
        # 16 × 256 images on 16 connections, spread over both workers.
        calls = [
            asyncio.create_task(client.post(CLASSIFY, content=body, headers=OCTET))
            for _ in range(16)
        ]
        await asyncio.sleep(0.1)
        if how == "SIGTERM":
            srv.process.send_signal(signal.SIGTERM)
        else:  # a terminal's Ctrl-C reaches every process of the group at once
            for pid in (srv.process.pid, *pids):
                os.kill(pid, signal.SIGINT)
        answers = await asyncio.gather(*calls)
    assert [a.status_code for a in answers] == [200] * 16
    assert all(cpu_seconds(pid) > before[pid] for pid in pids if Path(f"/proc/{pid}").exists())
    code = await asyncio.to_thread(srv.process.wait, 40)
    assert code == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
    with pytest.raises(httpx.ConnectError):
        httpx.get(srv.url + "/healthz", timeout=2)
    stop_gateway(srv)


def test_a_new_version_under_load_reaches_every_worker_without_a_failure(
    model_dir: Path, tmp_path: Path, digits
) -> None:
    shutil.copytree(model_dir / "mnist" / "1", tmp_path / "mnist" / "1")
    srv = start_gateway(tmp_path, "--workers", "2", "--model-poll-seconds", "0.2")
    try:
        body = digits["x_test"][0].tobytes()
        with Traffic.rest(srv.url, body, workers=8) as traffic:
            time.sleep(1.0)
            publish(tmp_path, 2, tmp_path / "mnist" / "1")
            wait_for(lambda: traffic.outcomes[-1].version == 2, "answers from version 2", 30)
            time.sleep(1.5)
        assert all(o.ok for o in traffic.outcomes), [o for o in traffic.outcomes if not o.ok]
        pids = worker_pids(srv)
        before = {pid: cpu_seconds(pid) for pid in pids}
        answers = asyncio.run(send_on_new_connections(srv.url, body, 64))
        assert all(cpu_seconds(pid) > before[pid] for pid in pids)  # both workers answered
        assert {a.json()["model_version"] for a in answers} == {2}
    finally:
        stop_gateway(srv)


def test_a_worker_that_cannot_load_the_model_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "mnist" / "1").mkdir(parents=True)
    (tmp_path / "mnist" / "1" / "saved_model.pb").write_bytes(b"not a model")
    started = time.monotonic()
    result = run_gateway(
        tmp_path, "--workers", "2", "--host", "127.0.0.1", "--rest-port", "0", "--grpc-port", "0"
    )
    assert result.returncode == 1
    assert "mnist-serve: worker " in result.stderr and "could be loaded" in result.stderr
    assert "restarting" not in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 60


def test_a_port_held_by_another_gateway_is_not_shared(two: Server, model_dir: Path) -> None:
    port = two.url.rsplit(":", 1)[1]
    result = run_gateway(
        model_dir, "--workers", "2", "--host", "127.0.0.1", "--rest-port", port, "--grpc-port", "0"
    )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_the_default_runs_a_worker_per_usable_cpu(model_dir: Path) -> None:
    srv = start_gateway(model_dir, workers=None)
    try:
        ports = json.loads(srv.log.with_suffix(".ready.json").read_text())
        cpus = usable_cpus()
        assert ports["workers"] == cpus
        if cpus > 1:
            assert ports["pid"] == srv.process.pid and len(worker_pids(srv)) == cpus
    finally:
        stop_gateway(srv)


def test_exemplars_of_the_answering_worker_ride_on_the_merged_buckets(model_dir, digits) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    env = {"OTEL_TRACES_EXPORTER": "console", "OTEL_BSP_SCHEDULE_DELAY": "100"}
    srv = start_gateway(model_dir, "--workers", "2", env=env)
    try:
        parent = {"traceparent": f"00-{trace}-00f067aa0ba902b7-01"}
        body = digits["x_test"][0].tobytes()
        answers = asyncio.run(send_on_new_connections(srv.url, body, 40, **parent))
        assert all(a.status_code == 200 for a in answers)
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=srv.url, timeout=10, limits=limits) as client:
            pages = [
                client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
                for _ in range(6)
            ]
    finally:
        stop_gateway(srv)
    for page in pages:
        buckets = [
            line
            for line in page.text.splitlines()
            if line.startswith("mnist_request_duration_seconds_bucket")
        ]
        assert any(f'trace_id="{trace}"' in line for line in buckets), page.text[:2000]
        count = scraped(
            page.text,
            "mnist_request_duration_seconds_count",
            code="OK",
            protocol="rest",
            route="classify",
        )
        assert count == 40  # summed over both workers, exemplars or not
        assert page.text.rstrip().endswith("# EOF")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_any_address_serves_ipv4_and_ipv6_on_rest_and_grpc(model_dir, workers) -> None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    srv = start_gateway(model_dir, "--host", "::", workers=workers)
    try:
        rest_port = srv.url.rsplit(":", 1)[1]
        grpc_port = srv.grpc.rsplit(":", 1)[1]
        for host in ("127.0.0.1", "[::1]"):
            assert httpx.get(f"http://{host}:{rest_port}/readyz", timeout=5).status_code == 200
            with grpc.insecure_channel(f"{host}:{grpc_port}") as channel:
                answer = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=5
                )
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        stop_gateway(srv)
