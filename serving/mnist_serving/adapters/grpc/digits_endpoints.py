"""The digits service over gRPC (``mnist.v1.DigitClassifier/Classify``)."""

from __future__ import annotations

from google.protobuf.message import Message

from mnist_contract.protos import digits_pb2
from mnist_serving.adapters.grpc import digits_codec as codec
from mnist_serving.core.accounting import RequestRecord
from mnist_serving.core.inference import InferenceCore
from mnist_serving.repositories.repository import VersionSpec


class DigitsEndpoints:
    def __init__(self, core: InferenceCore) -> None:
        self.core = core

    async def classify(self, request: digits_pb2.ClassifyRequest, record: RequestRecord) -> Message:
        images = codec.classify_images(request)
        result = await self.core.classify(images, VersionSpec.from_text(request.version), record)
        return codec.classify_response(request, result)
