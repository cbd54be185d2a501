"""The gRPC adapter: TF Serving's PredictionService and ModelService, the digits service,
health and reflection, all on one ``grpc.aio`` server sharing the REST adapter's core and loop.

Errors are mapped once (:func:`_abort`): a :class:`ServingError`'s neutral code is a
``grpc.StatusCode`` name; anything else is logged and answered INTERNAL with no detail. A
caller's deadline bounds the work (DEADLINE_EXCEEDED when it runs out).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc
import numpy as np
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

from mnist_client.protos import digits_pb2, digits_pb2_grpc
from mnist_client.protos import tensorflow_error_pb2 as tf_error
from mnist_client.protos import tensorflow_pb2 as tf_pb
from mnist_client.protos import tensorflow_serving_pb2 as tfs
from mnist_client.protos import tensorflow_serving_pb2_grpc as tfs_grpc
from mnist_client.protos._pool import POOL
from mnist_client.tensors import TensorError, array_to_tensor, tensor_to_array
from mnist_serving.core import SIGNATURES, DigitImage, InferenceCore, RequestTracker
from mnist_serving.errors import InvalidInput, NotFound, ServingError
from mnist_serving.model_store import VersionSpec
from mnist_serving.security import bearer_or_api_key
from mnist_serving.settings import MODEL_NAME, Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
SERVICES = (
    "tensorflow.serving.PredictionService",
    "tensorflow.serving.ModelService",
    "mnist.v1.DigitClassifier",
)
HEALTH_POLL_SECONDS = 0.25


def _register_in_pool() -> None:
    """Reflection answers from our private pool; give it the health and reflection files too."""
    for module in (health_pb2, reflection_pb2):
        name = module.DESCRIPTOR.name
        try:
            POOL.FindFileByName(name)
        except KeyError:
            POOL.AddSerializedFile(module.DESCRIPTOR.serialized_pb)


async def _abort(context: grpc.aio.ServicerContext[Any, Any], exc: Exception) -> NoReturn:
    if isinstance(exc, ServingError):
        if exc.retry_after:
            context.set_trailing_metadata((("retry-after", str(round(exc.retry_after))),))
        await context.abort(grpc.StatusCode[exc.code], exc.message)
    log.error("unhandled error", exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error")
    raise AssertionError("context.abort returned")  # it raises; this tells the type checker


def version_spec(spec: tfs.ModelSpec) -> VersionSpec:
    if spec.name != MODEL_NAME:
        if not spec.name:
            raise InvalidInput("model_spec.name is empty; this server serves 'mnist'")
        raise NotFound(f"Servable not found for request: Latest({spec.name})")
    choice = spec.WhichOneof("version_choice")
    if choice == "version":
        if spec.version.value < 1:
            raise InvalidInput(f"version must be a positive integer, got {spec.version.value}")
        return VersionSpec(version=spec.version.value)
    if choice == "version_label":
        return VersionSpec(label=spec.version_label)
    return VersionSpec()


def signature_def_map() -> tfs.SignatureDefMap:
    def info(shape: tuple[int, ...], name: str) -> tf_pb.TensorInfo:
        tensor = tf_pb.TensorInfo(name=name, dtype=tf_pb.DT_FLOAT)
        tensor.tensor_shape.dim.extend(tf_pb.TensorShapeProto.Dim(size=d) for d in shape)
        return tensor

    result = tfs.SignatureDefMap()
    for signature, (shape, output) in SIGNATURES.items():
        sig = result.signature_def[signature]
        sig.method_name = "tensorflow/serving/predict"
        sig.inputs["images"].CopyFrom(info((-1, *shape), f"{signature}_images:0"))
        sig.outputs[output].CopyFrom(info((-1, 10), f"StatefulPartitionedCall:{output}"))
    return result


class GrpcGateway:
    def __init__(self, core: InferenceCore, settings: Settings) -> None:
        self.core = core
        self.settings = settings
        limit = settings.grpc_max_message_bytes
        self.server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
                # Two servers must never share a port silently (gRPC's default allows it).
                ("grpc.so_reuseport", 0),
                # Clients reconnect every few minutes, so new replicas behind a plain Service
                # receive traffic (HTTP/2 otherwise pins a client to one pod for good).
                ("grpc.max_connection_age_ms", 300_000),
                ("grpc.max_connection_age_grace_ms", 30_000),
            ]
        )
        self.health = health.aio.HealthServicer()
        self._health_task: asyncio.Task[None] | None = None
        self._add_services(
            {
                "tensorflow.serving.PredictionService": _PredictionService(self),
                "tensorflow.serving.ModelService": _ModelService(self),
                "mnist.v1.DigitClassifier": _DigitClassifier(self),
            }
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        _register_in_pool()
        reflection.enable_server_reflection(
            (*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server, pool=POOL
        )

    def _add_services(self, servicers: dict[str, object]) -> None:
        """Register the services with a lenient parser: bytes that are not the expected
        message reach :meth:`handle` as an :class:`_Undecodable`, so the caller gets
        INVALID_ARGUMENT (counted like any refusal) instead of gRPC's bare UNKNOWN."""
        for service, methods in METHODS.items():
            handlers = {
                name: grpc.unary_unary_rpc_method_handler(
                    self._guarded(getattr(servicers[service], name), route),
                    request_deserializer=_lenient(request_type),
                    response_serializer=lambda message: message.SerializeToString(),
                )
                for name, (request_type, route) in methods.items()
            }
            self.server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service, handlers),)
            )

    def _guarded(self, method: Callable[..., Awaitable[Any]], route: str) -> Callable[..., Any]:
        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            if isinstance(request, _Undecodable):

                async def refuse(_tracker: RequestTracker) -> NoReturn:
                    raise InvalidInput(f"the request is not a valid {request.type_name} message")

                return await self.handle(route, context, refuse)
            return await method(request, context)

        return call

    async def start(self, host: str, port: int) -> int:
        address = f"{host}:{port}"
        s = self.settings
        if s.tls_cert_file is not None and s.tls_key_file is not None:
            credentials = grpc.ssl_server_credentials(
                [(s.tls_key_file.read_bytes(), s.tls_cert_file.read_bytes())]
            )
            bound = int(self.server.add_secure_port(address, credentials))
        else:
            bound = int(self.server.add_insecure_port(address))
        if bound == 0:
            raise OSError(f"cannot bind gRPC to {host}:{port}")
        await self.server.start()
        await self._update_health()
        self._health_task = asyncio.create_task(self._watch_health())
        return bound

    async def stop(self, grace: float) -> None:
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)

    async def _update_health(self) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if self.core.ready
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in ("", *SERVICES):
            await self.health.set(service, status)

    async def _watch_health(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_POLL_SECONDS)
            await self._update_health()

    async def handle(
        self,
        route: str,
        context: grpc.aio.ServicerContext[Any, Any],
        work: Callable[[RequestTracker], Awaitable[T]],
    ) -> T:
        metadata = dict(context.invocation_metadata() or ())
        credential = bearer_or_api_key(metadata.get("authorization"), metadata.get("x-api-key"))
        try:
            async with self.core.request("grpc", route, credential) as tracker:
                return await self.core.bounded(work(tracker), context.time_remaining())
        except Exception as exc:  # noqa: BLE001 - mapped once, in _abort
            await _abort(context, exc)


class _Undecodable:
    """Stands in for a request whose bytes did not parse as its message type."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name


def _lenient(message_type: Any) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return message_type.FromString(data)
        except DecodeError:
            return _Undecodable(message_type.DESCRIPTOR.full_name)

    return parse


# service → method → (request message, route label in metrics)
METHODS: dict[str, dict[str, tuple[Any, str]]] = {
    "tensorflow.serving.PredictionService": {
        "Predict": (tfs.PredictRequest, "predict"),
        "GetModelMetadata": (tfs.GetModelMetadataRequest, "metadata"),
    },
    "tensorflow.serving.ModelService": {"GetModelStatus": (tfs.GetModelStatusRequest, "status")},
    "mnist.v1.DigitClassifier": {"Classify": (digits_pb2.ClassifyRequest, "classify")},
}


def _inputs(request: tfs.PredictRequest) -> dict[str, np.ndarray]:
    inputs = {}
    for name, tensor in request.inputs.items():
        try:
            inputs[name] = tensor_to_array(tensor)
        except TensorError as exc:
            raise InvalidInput(f"input '{name}': {exc}") from exc
    return inputs


class _PredictionService(tfs_grpc.PredictionServiceServicer):  # type: ignore[misc]
    def __init__(self, gateway: GrpcGateway) -> None:
        self.g = gateway

    async def Predict(  # noqa: N802 - the RPC's name
        self, request: tfs.PredictRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> tfs.PredictResponse:
        async def work(tracker: RequestTracker) -> tfs.PredictResponse:
            spec = version_spec(request.model_spec)
            signature = request.model_spec.signature_name or "serving_default"
            result = await self.g.core.predict(signature, _inputs(request), spec, tracker)
            wanted = list(request.output_filter) or list(result.outputs)
            unknown = [name for name in wanted if name not in result.outputs]
            if unknown:
                raise InvalidInput(
                    f"output tensor alias not found in signature: {', '.join(unknown)} "
                    f"(outputs: {', '.join(result.outputs)})"
                )
            response = tfs.PredictResponse()
            response.model_spec.name = MODEL_NAME
            response.model_spec.version.value = result.version
            response.model_spec.signature_name = signature
            as_content = self.g.settings.grpc_tensor_content
            for name in wanted:
                response.outputs[name].CopyFrom(
                    array_to_tensor(result.outputs[name], as_content=as_content)
                )
            return response

        return await self.g.handle("predict", context, work)

    async def GetModelMetadata(  # noqa: N802
        self, request: tfs.GetModelMetadataRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> tfs.GetModelMetadataResponse:
        async def work(_tracker: RequestTracker) -> tfs.GetModelMetadataResponse:
            spec = version_spec(request.model_spec)
            fields = list(request.metadata_field)
            if not fields:
                raise InvalidInput("GetModelMetadataRequest must specify a metadata_field")
            unsupported = [f for f in fields if f != "signature_def"]
            if unsupported:
                raise InvalidInput(f"Metadata field {unsupported[0]} is not supported")
            served = self.g.core.metadata(spec)
            response = tfs.GetModelMetadataResponse()
            response.model_spec.name = MODEL_NAME
            response.model_spec.version.value = served.version
            response.metadata["signature_def"].Pack(signature_def_map())
            return response

        return await self.g.handle("metadata", context, work)


class _ModelService(tfs_grpc.ModelServiceServicer):  # type: ignore[misc]
    def __init__(self, gateway: GrpcGateway) -> None:
        self.g = gateway

    async def GetModelStatus(  # noqa: N802
        self, request: tfs.GetModelStatusRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> tfs.GetModelStatusResponse:
        async def work(_tracker: RequestTracker) -> tfs.GetModelStatusResponse:
            response = tfs.GetModelStatusResponse()
            for version in self.g.core.status(version_spec(request.model_spec)):
                status = response.model_version_status.add(
                    version=version.version,
                    state=tfs.ModelVersionStatus.State.Value(version.state),
                )
                status.status.SetInParent()  # error_code OK, as TF Serving writes it
                if version.error:
                    status.status.error_code = tf_error.UNKNOWN
                    status.status.error_message = version.error
            return response

        return await self.g.handle("status", context, work)


class _DigitClassifier(digits_pb2_grpc.DigitClassifierServicer):  # type: ignore[misc]
    def __init__(self, gateway: GrpcGateway) -> None:
        self.g = gateway

    async def Classify(  # noqa: N802
        self, request: digits_pb2.ClassifyRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> digits_pb2.ClassifyResponse:
        async def work(tracker: RequestTracker) -> digits_pb2.ClassifyResponse:
            if request.top_k > 10:
                raise InvalidInput(f"top_k must be an integer 0-10, got {request.top_k}")
            images = [_digit_image(i, image) for i, image in enumerate(request.images)]
            version = request.version
            spec = VersionSpec.from_text(version)
            result = await self.g.core.classify(images, spec, tracker)
            response = digits_pb2.ClassifyResponse(model_version=result.version)
            for c in result.results:
                item = response.results.add(
                    digit=c.digit, confidence=float(c.probabilities[c.digit])
                )
                item.probabilities.extend(c.probabilities.tolist())
                if request.top_k:
                    order = np.argsort(-c.probabilities, kind="stable")[: request.top_k]
                    item.top_k.extend(
                        digits_pb2.Candidate(digit=int(d), probability=float(c.probabilities[d]))
                        for d in order
                    )
                if request.return_preprocessed:
                    item.preprocessed = c.frame.tobytes()
            return response

        return await self.g.handle("classify", context, work)


def _digit_image(index: int, image: digits_pb2.Image) -> DigitImage:
    kind = image.WhichOneof("data")
    if kind == "encoded":
        return DigitImage(encoded=image.encoded)
    if kind == "raw":
        if len(image.raw) != 784:
            raise InvalidInput(
                f"image {index}: raw must be 784 bytes (28×28 uint8), got {len(image.raw)}"
            )
        return DigitImage(pixels=np.frombuffer(image.raw, np.uint8).reshape(28, 28))
    raise InvalidInput(f"image {index}: set either 'encoded' (an image file) or 'raw' (784 bytes)")
