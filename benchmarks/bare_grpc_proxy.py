"""The floor for the chain benchmark: a gRPC forwarder with no logic at all.

    python -m benchmarks.bare_grpc_proxy [--sync] TARGET   # prints "ready on gRPC 127.0.0.1:PORT"

Every unary call is passed to TARGET as opaque bytes (no parsing, no checks, no metrics) with
``grpc.aio`` on uvloop, as the gateway runs, or with ``--sync`` by grpc's thread-pool server
and a blocking client. What it adds in front of a backend is what any Python gRPC hop costs on
the machine; the gateway's own work is what it adds beyond that.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import uvloop


def _same(data: bytes) -> bytes:
    return data


class Forward(grpc.GenericRpcHandler):  # type: ignore[misc]
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel
        self.calls: dict[str, Callable[..., Any]] = {}

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method = details.method
        if method not in self.calls:
            self.calls[method] = self.channel.unary_unary(
                method, request_serializer=_same, response_deserializer=_same
            )
        call = self.calls[method]

        async def forward(request: bytes, _context: Any) -> bytes:
            return bytes(await call(request))

        return grpc.unary_unary_rpc_method_handler(forward, _same, _same)


class ForwardBlocking(grpc.GenericRpcHandler):  # type: ignore[misc]
    def __init__(self, channel: grpc.Channel) -> None:
        self.channel = channel

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        call = self.channel.unary_unary(
            details.method, request_serializer=_same, response_deserializer=_same
        )
        return grpc.unary_unary_rpc_method_handler(
            lambda request, _context: call(request), _same, _same
        )


def serve_blocking(target: str) -> None:
    server = grpc.server(ThreadPoolExecutor(8))
    server.add_generic_rpc_handlers((ForwardBlocking(grpc.insecure_channel(target)),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"ready on gRPC 127.0.0.1:{port}", flush=True)
    server.wait_for_termination()


async def serve(target: str) -> None:
    channel = grpc.aio.insecure_channel(target)
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((Forward(channel),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"ready on gRPC 127.0.0.1:{port}", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    if sys.argv[1] == "--sync":
        serve_blocking(sys.argv[2])
    else:
        uvloop.install()
        asyncio.run(serve(sys.argv[1]))
