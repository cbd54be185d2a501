"""A stopped gateway starts again at once on the same ports, though the connections it closed
linger in TIME-WAIT; a second gateway on ports a live one holds is still refused."""

from __future__ import annotations

from pathlib import Path

import grpc
import httpx
import pytest

from mnist_contract.protos import tensorflow_serving_pb2 as tfs
from mnist_contract.protos import tensorflow_serving_pb2_grpc as tfs_grpc
from tests.helpers.processes import free_port, run_gateway, start_gateway, stop_gateway

TIME_WAIT = "06"  # a socket's state in /proc/net/tcp


def _time_waits(port: int) -> int:
    """Sockets in TIME-WAIT whose local end is ``port``."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == TIME_WAIT:
            count += 1
    return count


def _serve_and_close(rest: str, grpc_target: str) -> grpc.Channel:
    """Requests whose connections the gateway closes (HTTP/1.0), and a gRPC channel left open
    for the gateway to close when it stops."""
    for _ in range(20):
        answer = httpx.get(f"{rest}/v1/models/mnist", headers={"Connection": "close"})
        assert answer.status_code == 200
    channel = grpc.insecure_channel(grpc_target)
    stub = tfs_grpc.ModelServiceStub(channel)
    stub.GetModelStatus(tfs.GetModelStatusRequest(model_spec=tfs.ModelSpec(name="mnist")))
    return channel


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_stopped_gateway_starts_again_at_once_on_the_same_ports(model_dir, workers) -> None:
    rest, grpc_port = free_port(), free_port()
    ports = ("--rest-port", str(rest), "--grpc-port", str(grpc_port), "--workers", workers)
    first = start_gateway(model_dir, *ports, grpc_port=grpc_port)
    channel = _serve_and_close(first.url, first.grpc)
    assert stop_gateway(first) == 0
    channel.close()
    assert _time_waits(rest) > 0  # the gateway closed them: their TIME-WAIT is on its side
    second = start_gateway(model_dir, *ports, grpc_port=grpc_port)
    try:
        assert second.url.endswith(f":{rest}") and second.grpc.endswith(f":{grpc_port}")
        assert httpx.get(f"{second.url}/readyz").status_code == 200
    finally:
        stop_gateway(second)


@pytest.mark.parametrize(("running", "second"), [("1", "2"), ("2", "1"), ("2", "2")])
def test_a_second_gateway_on_a_live_ones_ports_is_refused(model_dir, running, second) -> None:
    rest, grpc_port = free_port(), free_port()
    ports = ("--rest-port", str(rest), "--grpc-port", str(grpc_port))
    live = start_gateway(model_dir, *ports, "--workers", running, grpc_port=grpc_port)
    try:
        _serve_and_close(live.url, live.grpc).close()
        result = run_gateway(model_dir, "--host", "127.0.0.1", *ports, "--workers", second)
        assert result.returncode == 1, result.stderr
        (line,) = [x for x in result.stderr.splitlines() if x.startswith("mnist-serve:")]
        assert line == f"mnist-serve: cannot listen on 127.0.0.1:{rest} (Address already in use)"
        assert httpx.get(f"{live.url}/readyz").status_code == 200  # the live one is unharmed
    finally:
        stop_gateway(live)
