"""The Open Inference Protocol over gRPC (``inference.GRPCInferenceService``)."""

from __future__ import annotations

from google.protobuf.message import Message

from mnist_contract.model import INPUT_NAME
from mnist_contract.protos import open_inference_pb2 as v2_pb
from mnist_serving import SERVER_VERSION
from mnist_serving.adapters import open_inference as v2
from mnist_serving.adapters.grpc import open_inference_codec as codec
from mnist_serving.core.accounting import RequestRecord
from mnist_serving.core.inference import InferenceCore
from mnist_serving.deadlines import within_callers_deadline
from mnist_serving.errors import NotFound


class OpenInferenceEndpoints:
    def __init__(self, core: InferenceCore) -> None:
        self.core = core

    async def live(self, _request: Message, _record: RequestRecord) -> Message:
        return v2_pb.ServerLiveResponse(live=True)

    async def ready(self, _request: Message, _record: RequestRecord) -> Message:
        return v2_pb.ServerReadyResponse(ready=self.core.ready)

    async def model_ready(self, request: v2_pb.ModelReadyRequest, _: RequestRecord) -> Message:
        spec = v2.version_spec(request.name, request.version)
        try:
            ready = self.core.model_ready(spec)
        except NotFound:  # a version not served is not ready, as Triton answers it
            ready = False
        return v2_pb.ModelReadyResponse(ready=ready)

    async def server_metadata(self, _request: Message, _record: RequestRecord) -> Message:
        return v2_pb.ServerMetadataResponse(**v2.server_metadata(SERVER_VERSION))

    async def model_metadata(
        self, request: v2_pb.ModelMetadataRequest, _record: RequestRecord
    ) -> Message:
        spec = v2.version_spec(request.name, request.version)
        return codec.model_metadata_message(self.core.served_versions(spec))

    async def infer(self, request: v2_pb.ModelInferRequest, record: RequestRecord) -> Message:
        spec, call = codec.parse_grpc(request)
        work = self.core.predict(call.signature, {INPUT_NAME: call.images}, spec, record)
        # The gateway's own limit is kept around the whole request; the caller's, when given
        # in the request, is kept here.
        if call.timeout_s is not None:
            work = within_callers_deadline(work, call.timeout_s)
        result = await work
        return codec.render_grpc(call, result)
