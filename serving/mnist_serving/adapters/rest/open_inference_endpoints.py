"""The Open Inference Protocol's REST API: health, metadata, readiness and ``/infer`` with JSON
or binary tensors."""

from __future__ import annotations

from mnist_contract.model import INPUT_NAME, MODEL_NAME
from mnist_contract.open_inference import HEADER_LENGTH, FramingError, frame, split
from mnist_serving import SERVER_VERSION
from mnist_serving.adapters import open_inference as v2
from mnist_serving.adapters.rest import open_inference_codec as codec
from mnist_serving.adapters.rest.incoming import RestRequest, read_body
from mnist_serving.adapters.rest.json_body import dumps, json_response, loads
from mnist_serving.adapters.rest.responses import Response
from mnist_serving.core.accounting import RequestRecord
from mnist_serving.core.inference import InferenceCore
from mnist_serving.deadlines import within_callers_deadline
from mnist_serving.errors import InvalidInput
from mnist_serving.repositories.repository import VersionSpec
from mnist_serving.settings import Settings


class OpenInferenceEndpoints:
    def __init__(self, core: InferenceCore, settings: Settings) -> None:
        self.core = core
        self.limit = settings.max_body_bytes
        self.depth = settings.max_json_depth

    @staticmethod
    def _spec(request: RestRequest) -> VersionSpec:
        params = request.path_params
        return v2.version_spec(params["model"], params.get("model_version", ""))

    async def server_metadata(self, _request: RestRequest, _record: RequestRecord) -> Response:
        return json_response(v2.server_metadata(SERVER_VERSION))

    async def model_metadata(self, request: RestRequest, _record: RequestRecord) -> Response:
        return json_response(v2.model_metadata(self.core.served_versions(self._spec(request))))

    async def model_ready(self, request: RestRequest, _record: RequestRecord) -> Response:
        ready = self.core.model_ready(self._spec(request))
        return json_response({"name": MODEL_NAME, "ready": ready}, 200 if ready else 503)

    async def infer(self, request: RestRequest, record: RequestRecord) -> Response:
        spec = self._spec(request)
        body = await read_body(request, self.limit)
        try:
            header, binary = split(body, request.headers.get(HEADER_LENGTH))
        except FramingError as exc:
            raise InvalidInput(str(exc)) from None
        if not header and binary:
            raise InvalidInput(
                f"{HEADER_LENGTH} is 0: the JSON header in front of the tensors is empty"
            )
        call = codec.parse_rest(loads(header, self.depth), binary)
        work = self.core.predict(call.signature, {INPUT_NAME: call.images}, spec, record)
        # The gateway's own limit is kept around the whole request; the caller's, when given
        # in the request, is kept here.
        if call.timeout_s is not None:
            work = within_callers_deadline(work, call.timeout_s)
        result = await work
        answer, tails = codec.render_rest(call, result)
        document = dumps(answer)
        if not tails:
            return Response(document)
        return Response(
            frame(document, tails),
            media_type="application/octet-stream",
            headers={HEADER_LENGTH: str(len(document))},
        )

    async def live(self, _request: RestRequest, _record: RequestRecord) -> Response:
        return json_response({"live": True})

    async def ready(self, _request: RestRequest, _record: RequestRecord) -> Response:
        ready = self.core.ready
        return json_response({"ready": ready}, 200 if ready else 503)
