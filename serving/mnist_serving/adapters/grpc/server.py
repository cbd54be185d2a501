"""The gRPC adapter: one service table over the endpoints of each API, on one ``grpc.aio``
server.

:data:`SERVICES` lists every service and method with its request type and metrics route;
registration, the health service's names and reflection's names all come from it. Messages are
translated by each API's codec; the work is the core's, counted by the request accounting.
Errors are mapped once (:func:`~mnist_serving.adapters.grpc.errors.abort`). A caller's deadline
bounds the work (DEADLINE_EXCEEDED when it runs out). Health follows the gateway's readiness
(:class:`~mnist_serving.core.readiness.Readiness`), NOT_SERVING until ready.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import grpc
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

from mnist_contract.protos import digits_pb2
from mnist_contract.protos import open_inference_pb2 as v2_pb
from mnist_contract.protos import tensorflow_serving_pb2 as tfs
from mnist_contract.protos.pool import POOL
from mnist_serving.adapters.grpc.digits_endpoints import DigitsEndpoints
from mnist_serving.adapters.grpc.errors import Context, abort
from mnist_serving.adapters.grpc.open_inference_endpoints import OpenInferenceEndpoints
from mnist_serving.adapters.grpc.tfserving_endpoints import TFServingEndpoints
from mnist_serving.core.access_control import bearer_or_api_key
from mnist_serving.core.accounting import Kind, RequestAccounting, RequestRecord
from mnist_serving.core.inference import InferenceCore
from mnist_serving.core.readiness import Readiness
from mnist_serving.deadlines import RequestLimit
from mnist_serving.errors import InvalidInput, StartupError
from mnist_serving.observability.access_log import REQUEST_ID_HEADER, request_id
from mnist_serving.settings import Settings

Endpoint = Callable[[Any, RequestRecord], Awaitable[Message]]
Api = Literal["tfserving", "digits", "open_inference"]


@dataclass(frozen=True)
class Method:
    """One RPC: its request type, which endpoint answers, and how it is counted."""

    name: str  # the RPC's name
    request: type[Message]
    api: Api  # whose endpoints answer
    endpoint: str  # the method of that API's endpoints object
    kind: Kind = "api"  # inference calls take an admission slot; operational ones are not counted
    label: str = (
        ""  # the route label in metrics (and the open_routes name); the endpoint's if empty
    )
    protocol: str = "grpc"  # the protocol label in metrics

    @property
    def route_label(self) -> str:
        return self.label or self.endpoint


def _v2(name: str, request: type[Message], endpoint: str, label: str = "") -> Method:
    kind: Kind = "api"
    if label in ("healthz", "readyz"):
        kind = "operational"
    elif endpoint == "infer":
        kind = "inference"
    return Method(name, request, "open_inference", endpoint, kind, label, "v2_grpc")


SERVICES: dict[str, tuple[Method, ...]] = {
    "tensorflow.serving.PredictionService": (
        Method("Predict", tfs.PredictRequest, "tfserving", "predict", "inference"),
        Method("GetModelMetadata", tfs.GetModelMetadataRequest, "tfserving", "metadata"),
    ),
    "tensorflow.serving.ModelService": (
        Method("GetModelStatus", tfs.GetModelStatusRequest, "tfserving", "status"),
    ),
    "mnist.v1.DigitClassifier": (
        Method("Classify", digits_pb2.ClassifyRequest, "digits", "classify", "inference"),
    ),
    "inference.GRPCInferenceService": (
        _v2("ServerLive", v2_pb.ServerLiveRequest, "live", "healthz"),
        _v2("ServerReady", v2_pb.ServerReadyRequest, "ready", "readyz"),
        _v2("ModelReady", v2_pb.ModelReadyRequest, "model_ready"),
        _v2("ServerMetadata", v2_pb.ServerMetadataRequest, "server_metadata"),
        _v2("ModelMetadata", v2_pb.ModelMetadataRequest, "model_metadata"),
        _v2("ModelInfer", v2_pb.ModelInferRequest, "infer"),
    ),
}


class _Undecodable:
    """Stands in for a request whose bytes did not parse as its message type."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name


def _lenient(message_type: type[Message]) -> Callable[[bytes], Any]:
    """Bytes that are not the expected message reach the handler as :class:`_Undecodable`, so
    the caller gets INVALID_ARGUMENT (counted like any refusal), not gRPC's bare UNKNOWN."""

    def parse(data: bytes) -> Any:
        try:
            return message_type.FromString(data)
        except DecodeError:
            return _Undecodable(message_type.DESCRIPTOR.full_name)

    return parse


class GrpcServer:
    """The gRPC side of a gateway: services from :data:`SERVICES`, health, reflection."""

    def __init__(
        self,
        core: InferenceCore,
        accounting: RequestAccounting,
        settings: Settings,
        readiness: Readiness,
    ) -> None:
        self.core = core
        self.accounting = accounting
        self._settings = settings
        self._readiness = readiness
        self._limit = RequestLimit(settings.request_timeout_ms / 1000)
        self._health_update: asyncio.Task[None] | None = None
        self.server: grpc.aio.Server | None = None
        self.health = health.aio.HealthServicer()

    def _build(self, shared: bool) -> grpc.aio.Server:
        """The grpc.aio server, made inside the running loop (it binds to the loop it sees)."""
        settings = self._settings
        limit = settings.grpc_max_message_bytes
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
                # Two servers must never share a port silently (gRPC's default allows it),
                # except the workers of one gateway, whose supervisor holds the port.
                ("grpc.so_reuseport", 1 if shared else 0),
                # Clients reconnect every few minutes, so new replicas behind a plain Service
                # receive traffic (HTTP/2 otherwise pins a client to one pod for good).
                ("grpc.max_connection_age_ms", 300_000),
                # ...and a call still open then (a request stalled mid-message) gets 30 s more.
                ("grpc.max_connection_age_grace_ms", 30_000),
                # Slow and idle clients: the TLS and HTTP/2 handshake (a connection that sends
                # nothing included) within the header limit, a connection with no call for
                # 5 minutes closed, and at most max_connections open per worker.
                ("grpc.server_handshake_timeout_ms", int(settings.header_timeout_seconds * 1000)),
                ("grpc.max_connection_idle_ms", 300_000),
                ("grpc.max_allowed_incoming_connections", settings.max_connections),
            ]
        )
        self._register(server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        _add_to_pool(health_pb2, reflection_pb2)
        names = (*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server, pool=POOL)
        return server

    def _register(self, server: grpc.aio.Server) -> None:
        endpoints: dict[str, Any] = {
            "tfserving": TFServingEndpoints(self.core, self._settings),
            "digits": DigitsEndpoints(self.core),
            "open_inference": OpenInferenceEndpoints(self.core),
        }
        for service, methods in SERVICES.items():
            handlers = {
                method.name: grpc.unary_unary_rpc_method_handler(
                    self._handler(method, getattr(endpoints[method.api], method.endpoint)),
                    request_deserializer=_lenient(method.request),
                    response_serializer=lambda message: message.SerializeToString(),
                )
                for method in methods
            }
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service, handlers),)
            )

    def _handler(
        self, method: Method, endpoint: Endpoint
    ) -> Callable[[Any, Context], Awaitable[Message]]:
        accounting = self.accounting
        limit = self._limit
        operational = method.kind == "operational"  # not time-limited: probes answer at once
        mutual_tls = self._settings.tls_client_ca_file is not None

        async def handle(request: Any, context: Context) -> Message:
            metadata = dict(context.invocation_metadata() or ())
            key = bearer_or_api_key(metadata.get("authorization"), metadata.get("x-api-key"))
            rid = request_id(metadata.get(REQUEST_ID_HEADER))
            # In the trailing metadata, which goes out with the answer and its status: initial
            # metadata sent on its own is a write of its own.
            context.set_trailing_metadata(((REQUEST_ID_HEADER, rid),))
            record = RequestRecord(method.protocol, method.route_label, rid, _peer(context))
            if mutual_tls:
                record.client_cert = _client_cert(context)
            try:
                async with accounting.request(record, key, method.kind, carrier=metadata):
                    if isinstance(request, _Undecodable):
                        raise InvalidInput(
                            f"the request is not a valid {request.type_name} message"
                        )
                    work = endpoint(request, record)
                    if operational:
                        return await work
                    return await limit.bound(work, context.time_remaining())
            except Exception as exc:  # noqa: BLE001 - mapped once, in abort
                await abort(context, exc)

        return handle

    def bind(
        self,
        host: str,
        port: int,
        credentials: grpc.ServerCredentials | None,
        *,
        shared: bool = False,
    ) -> int:
        """Bind ``host:port`` (0: a free port); the port bound. ``shared``: with
        ``SO_REUSEPORT``, beside the other workers of the same gateway."""
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # IPv6 in brackets
        self.server = server = self._build(shared)
        try:  # grpcio raises RuntimeError on a port in use, some versions return 0 instead
            if credentials is not None:
                bound = int(server.add_secure_port(address, credentials))
            else:
                bound = int(server.add_insecure_port(address))
        except RuntimeError:
            bound = 0
        if bound == 0:
            raise StartupError(f"cannot listen for gRPC on {address} (in use or not an address)")
        return bound

    async def start(self) -> None:
        assert self.server is not None, "bind first"
        await self.server.start()
        self._readiness.subscribe(self._on_readiness)

    def _on_readiness(self, _ready: bool) -> None:
        # Health setters are coroutines; the task reads readiness when it runs, so the last
        # change always wins even when several arrive together.
        self._health_update = asyncio.get_running_loop().create_task(self._apply_health())

    async def _apply_health(self) -> None:
        serving = health_pb2.HealthCheckResponse.SERVING
        status = serving if self._readiness.ready else health_pb2.HealthCheckResponse.NOT_SERVING
        for service in ("", *SERVICES):
            await self.health.set(service, status)

    async def stop(self, grace: float) -> None:
        if self.server is None:
            return
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


def _client_cert(context: Context) -> str | None:
    """The verified client certificate's name (common name, else first alternative name)."""
    auth = context.auth_context()
    for key in ("x509_common_name", "x509_subject_alternative_name"):
        if auth.get(key):
            return bytes(auth[key][0]).decode("utf-8", "replace")
    return None


def _peer(context: Context) -> str | None:
    """``ipv4:127.0.0.1:5000`` → ``127.0.0.1:5000`` (gRPC names the address family first)."""
    peer: str | None = context.peer()
    return peer.split(":", 1)[1] if peer and ":" in peer else peer


def _add_to_pool(*modules: Any) -> None:
    """Reflection answers from our private pool; give it the health and reflection files too."""
    for module in modules:
        try:
            POOL.FindFileByName(module.DESCRIPTOR.name)
        except KeyError:
            POOL.AddSerializedFile(module.DESCRIPTOR.serialized_pb)
