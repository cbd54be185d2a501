"""TF Serving's REST API: model status, signature metadata and ``:predict``."""

from __future__ import annotations

from mnist_serving.adapters.rest import tfserving_codec as codec
from mnist_serving.adapters.rest.incoming import RestRequest, read_body, version_spec
from mnist_serving.adapters.rest.json_body import json_response
from mnist_serving.adapters.rest.responses import Response
from mnist_serving.core.accounting import RequestRecord
from mnist_serving.core.inference import InferenceCore
from mnist_serving.settings import Settings


class TFServingEndpoints:
    def __init__(self, core: InferenceCore, settings: Settings) -> None:
        self.core = core
        self.limit = settings.max_body_bytes
        self.depth = settings.max_json_depth

    async def status(self, request: RestRequest, _record: RequestRecord) -> Response:
        return json_response(codec.render_status(self.core.status(version_spec(request))))

    async def metadata(self, request: RestRequest, _record: RequestRecord) -> Response:
        return json_response(codec.render_metadata(self.core.metadata(version_spec(request))))

    async def predict(self, request: RestRequest, record: RequestRecord) -> Response:
        spec = version_spec(request)
        body = codec.loads_predict(await read_body(request, self.limit), self.depth)
        signature, inputs, rows = codec.parse_predict(body)
        result = await self.core.predict(signature, inputs, spec, record)
        return json_response(codec.render_predict(result, rows))
