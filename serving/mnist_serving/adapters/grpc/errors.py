"""The gRPC adapter's one error map: a typed error's neutral code is a ``grpc.StatusCode``
name; anything else is logged and answered INTERNAL with no detail."""

from __future__ import annotations

import logging
from typing import Any, NoReturn, TypeAlias

import grpc

from mnist_serving.errors import ServingError

log = logging.getLogger(__name__)
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


async def abort(context: Context, exc: Exception) -> NoReturn:
    if isinstance(exc, ServingError):
        retry = exc.retry_after_seconds
        if retry is not None:  # beside what the trailer already holds (the request id)
            trailer = (*(context.trailing_metadata() or ()), ("retry-after", str(retry)))
            context.set_trailing_metadata(trailer)
        await context.abort(grpc.StatusCode[exc.code], exc.message)
    log.error("unhandled error", exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error")
    raise AssertionError("context.abort returned")  # it raises; this tells the type checker
