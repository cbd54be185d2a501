"""gRPC: build the call for a chunk of items, send it (sync or async), parse the answer.

Against the gateway it uses ``mnist.v1.DigitClassifier/Classify`` (raw 28×28 bytes or image files
bytes per image); against plain TF Serving, ``tensorflow.serving.PredictionService/Predict``
with a ``tensor_content`` tensor (answers read from ``float_val`` or ``tensor_content``); against
any Open Inference Protocol server, ``inference.GRPCInferenceService/ModelInfer`` with raw
contents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from mnist_client import _v2
from mnist_client._codec import (
    Item,
    Prediction,
    frames_for_tfserving,
    predictions_from_probabilities,
)
from mnist_client._config import ClientConfig
from mnist_client._errors import ConnectionFailed, InvalidInput, MnistError, from_grpc
from mnist_contract.model import CLASSES, INPUT_NAME, SERVING_DEFAULT
from mnist_contract.protos import digits_pb2, digits_pb2_grpc, open_inference_pb2
from mnist_contract.protos import open_inference_pb2_grpc as v2_grpc
from mnist_contract.protos import tensorflow_serving_pb2 as tfs
from mnist_contract.protos import tensorflow_serving_pb2_grpc as tfs_grpc
from mnist_contract.tensors import TensorError, array_to_tensor, tensor_to_array

# 1,024 images of float32 are 3.2 MB; gRPC's 4 MiB default is too tight for big chunks.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]


@dataclass(frozen=True)
class GrpcCall:
    method: str  # "classify", "predict" or "infer"
    request: Any
    metadata: tuple[tuple[str, str], ...]


def build(items: list[Item], top_k: int, config: ClientConfig) -> GrpcCall:
    metadata = (("authorization", f"Bearer {config.api_key}"),) if config.api_key else ()
    if config.api == "v2":
        return GrpcCall("infer", _v2.grpc_request(items, config.model), metadata)
    if config.api == "tfserving":
        request = tfs.PredictRequest()
        request.model_spec.name = config.model
        request.model_spec.signature_name = SERVING_DEFAULT.name
        request.inputs[INPUT_NAME].CopyFrom(array_to_tensor(frames_for_tfserving(items)))
        return GrpcCall("predict", request, metadata)
    classify = digits_pb2.ClassifyRequest(top_k=top_k)
    for item in items:
        if item.encoded is not None:
            classify.images.add(encoded=item.encoded)
        else:
            classify.images.add(raw=item.frame.tobytes())  # type: ignore[union-attr]
    return GrpcCall("classify", classify, metadata)


def parse(answer: Any, top_k: int, config: ClientConfig) -> list[Prediction]:
    if isinstance(answer, open_inference_pb2.ModelInferResponse):
        return _v2.parse_grpc(answer, top_k)
    if isinstance(answer, tfs.PredictResponse):
        try:
            probs = tensor_to_array(answer.outputs[SERVING_DEFAULT.output])
        except (KeyError, TensorError) as exc:
            raise MnistError(f"unexpected answer from {config.url}: {exc}") from None
        return predictions_from_probabilities(
            probs.reshape(-1, CLASSES), answer.model_spec.version.value, top_k
        )
    import numpy as np

    probs = np.array([list(r.probabilities) for r in answer.results], dtype=np.float64)
    return predictions_from_probabilities(probs, answer.model_version, top_k)


def _error(exc: grpc.RpcError, config: ClientConfig) -> MnistError:
    code = exc.code()
    details = exc.details() or ""
    if code == grpc.StatusCode.UNAVAILABLE and (
        "connect" in details.lower() or "refused" in details.lower()
    ):
        return ConnectionFailed(f"cannot reach {config.url}: {details}", grpc_code=code.name)
    trailing = dict(exc.trailing_metadata() or ())
    return from_grpc(code.name, details, trailing.get("retry-after"))


def _channel(config: ClientConfig, api: Any) -> Any:
    """A channel from ``grpc`` or ``grpc.aio`` (``api``): TLS for grpcs:// URLs."""
    if not config.tls:
        return api.insecure_channel(config.url, options=_OPTIONS)
    roots, key, chain = (
        _read_pem(name) for name in (config.ca_file, config.key_file, config.cert_file)
    )
    credentials = grpc.ssl_channel_credentials(roots, private_key=key, certificate_chain=chain)
    return api.secure_channel(config.url, credentials, options=_OPTIONS)


def _read_pem(name: str | None) -> bytes | None:
    if name is None:
        return None
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"TLS file {name} cannot be read: {exc.strerror}") from None


def _methods(channel: Any) -> dict[str, Any]:
    return {
        "classify": digits_pb2_grpc.DigitClassifierStub(channel).Classify,
        "predict": tfs_grpc.PredictionServiceStub(channel).Predict,
        "infer": v2_grpc.GRPCInferenceServiceStub(channel).ModelInfer,
    }


def _readiness(channel: Any, config: ClientConfig) -> tuple[Any, Any, Callable[[Any], bool]]:
    """(call, request, answer → ready?): V2's ModelReady for V2 servers (Triton and KServe
    have no gRPC health service), the standard health check otherwise."""
    if config.api == "v2":
        check = v2_grpc.GRPCInferenceServiceStub(channel).ModelReady
        request = open_inference_pb2.ModelReadyRequest(name=config.model)
        return check, request, lambda answer: bool(answer.ready)
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    serving = health_pb2.HealthCheckResponse.SERVING
    check = health_pb2_grpc.HealthStub(channel).Check
    return check, health_pb2.HealthCheckRequest(), lambda answer: answer.status == serving


class GrpcTransport:
    def __init__(self, config: ClientConfig, channel: grpc.Channel | None = None) -> None:
        self.config = config
        self._channel = channel or _channel(config, grpc)
        self._methods = _methods(self._channel)

    def send(self, call: GrpcCall) -> Any:
        method = self._methods[call.method]
        try:
            return method(call.request, timeout=self.config.timeout, metadata=call.metadata)
        except grpc.RpcError as exc:
            raise _error(exc, self.config) from None

    def ready(self) -> bool:
        check, request, is_ready = _readiness(self._channel, self.config)
        try:
            return is_ready(check(request, timeout=self.config.timeout))
        except grpc.RpcError:
            return False

    def close(self) -> None:
        self._channel.close()


class AsyncGrpcTransport:
    def __init__(self, config: ClientConfig, channel: grpc.aio.Channel | None = None) -> None:
        self.config = config
        self._channel = channel or _channel(config, grpc.aio)
        self._methods = _methods(self._channel)

    async def send(self, call: GrpcCall) -> Any:
        method = self._methods[call.method]
        try:
            return await method(call.request, timeout=self.config.timeout, metadata=call.metadata)
        except grpc.RpcError as exc:
            raise _error(exc, self.config) from None

    async def ready(self) -> bool:
        check, request, is_ready = _readiness(self._channel, self.config)
        try:
            return is_ready(await check(request, timeout=self.config.timeout))
        except grpc.RpcError:
            return False

    async def close(self) -> None:
        await self._channel.close()
