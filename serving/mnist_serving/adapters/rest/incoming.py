"""What a REST request carries besides its route: its key, the version its path names, its
body (size-limited, inflated) and the caller's address."""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request

from mnist_serving.adapters.rest.json_body import decompress
from mnist_serving.core.access_control import bearer_or_api_key
from mnist_serving.core.inference import InferenceCore
from mnist_serving.errors import CallerGone, PayloadTooLarge
from mnist_serving.repositories.protocol import VersionSpec, parse_version


def credential(request: Request) -> str | None:
    headers = request.headers
    return bearer_or_api_key(headers.get("authorization"), headers.get("x-api-key"))


def peer(request: Request) -> str | None:
    client = request.client
    return f"{client.host}:{client.port}" if client else None


def version_spec(request: Request) -> VersionSpec:
    """The version a TF Serving path names, after checking the path names our model."""
    params = request.path_params
    if "version" in params:
        spec = VersionSpec(version=parse_version(params["version"]))
    elif "label" in params:
        spec = VersionSpec(label=params["label"])
    else:
        spec = VersionSpec()
    InferenceCore.require_model(params["model"], spec)
    return spec


async def read_body(request: Request, limit: int) -> bytes:
    """The body, inflated when sent compressed, refused past ``limit`` bytes before or after."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"request body of {int(declared):,} bytes exceeds the {limit:,}-byte limit"
        )
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"request body exceeds the {limit:,}-byte limit")
            chunks.append(chunk)
    except ClientDisconnect:
        raise CallerGone("the caller closed the connection before sending its whole body") from None
    return decompress(b"".join(chunks), request.headers.get("content-encoding"), limit)
