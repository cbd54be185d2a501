"""TF Serving's gRPC API: ``PredictionService`` (Predict, GetModelMetadata) and
``ModelService`` (GetModelStatus)."""

from __future__ import annotations

from google.protobuf.message import Message

from mnist_contract.model import SERVING_DEFAULT
from mnist_contract.protos import tensorflow_serving_pb2 as tfs
from mnist_serving.adapters.grpc import tfserving_codec as codec
from mnist_serving.core.accounting import RequestRecord
from mnist_serving.core.inference import InferenceCore
from mnist_serving.settings import Settings


class TFServingEndpoints:
    def __init__(self, core: InferenceCore, settings: Settings) -> None:
        self.core = core
        self.as_content = settings.grpc_tensor_content

    async def predict(self, request: tfs.PredictRequest, record: RequestRecord) -> Message:
        spec = codec.version_spec(request.model_spec)
        signature = request.model_spec.signature_name or SERVING_DEFAULT.name
        inputs = codec.predict_inputs(request)
        result = await self.core.predict(signature, inputs, spec, record)
        return codec.predict_response(request, signature, result, self.as_content)

    async def metadata(self, request: tfs.GetModelMetadataRequest, _: RequestRecord) -> Message:
        spec = codec.version_spec(request.model_spec)
        codec.check_metadata_fields(request)
        return codec.metadata_response(self.core.metadata(spec).version)

    async def status(self, request: tfs.GetModelStatusRequest, _: RequestRecord) -> Message:
        return codec.status_response(self.core.status(codec.version_spec(request.model_spec)))
