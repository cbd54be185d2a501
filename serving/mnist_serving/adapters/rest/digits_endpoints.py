"""The digits API (``POST /v1/digits:classify``): JSON, image files, multipart forms or raw
frames in; each image's digit, confidence and probabilities out."""

from __future__ import annotations

from typing import Any

from mnist_contract.preprocess import MEDIA_TYPES
from mnist_serving.adapters.rest import digits_codec as codec
from mnist_serving.adapters.rest.incoming import RestRequest, read_body
from mnist_serving.adapters.rest.json_body import json_response, loads
from mnist_serving.adapters.rest.multipart import parse_form
from mnist_serving.adapters.rest.responses import JSON, Response
from mnist_serving.core.accounting import RequestRecord
from mnist_serving.core.digits import DigitImage
from mnist_serving.core.inference import InferenceCore
from mnist_serving.errors import UnsupportedMediaType
from mnist_serving.repositories.repository import VersionSpec
from mnist_serving.settings import Settings

ACCEPTED_TYPES = ", ".join((JSON, *MEDIA_TYPES, "multipart/form-data", "application/octet-stream"))


class DigitsEndpoints:
    def __init__(self, core: InferenceCore, settings: Settings) -> None:
        self.core = core
        self.limit = settings.max_body_bytes
        self.depth = settings.max_json_depth

    async def classify(self, request: RestRequest, record: RequestRecord) -> Response:
        images, options = await self._digit_request(request)
        top_k, preprocessed, version = codec.parse_options(options)
        result = await self.core.classify(images, VersionSpec.from_text(version), record)
        return json_response(codec.render_classify(result, top_k, preprocessed))

    async def _digit_request(self, request: RestRequest) -> tuple[list[DigitImage], dict[str, Any]]:
        """Images and options from any of the digits API's content types."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        query = dict(request.query_params)
        if content_type == JSON or content_type.endswith("+json"):
            body = loads(await read_body(request, self.limit), self.depth)
            images, options = codec.parse_digits_json(body)
            return images, {**query, **options}
        if content_type in MEDIA_TYPES:
            return [DigitImage(encoded=await read_body(request, self.limit))], query
        if content_type == "application/octet-stream":
            return codec.parse_octet_stream(await read_body(request, self.limit)), query
        if content_type == "multipart/form-data":
            body = await read_body(request, self.limit)
            form = parse_form(request.headers.get("content-type", ""), body)
            return [DigitImage(encoded=data) for data in form.files], {**query, **form.options}
        if not content_type:
            raise UnsupportedMediaType(f"missing Content-Type; send {ACCEPTED_TYPES}")
        raise UnsupportedMediaType(
            f"unsupported Content-Type {content_type!r}; send {ACCEPTED_TYPES}"
        )
