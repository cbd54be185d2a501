"""Gateways in this process for the tests (ASGI, no sockets), and image bodies to send them;
real gateways on free ports are :mod:`tests.helpers.processes`."""

from __future__ import annotations

import base64
import contextlib
import io
from collections.abc import AsyncIterator

import httpx
import numpy as np
from PIL import Image

from mnist_serving.build import build_gateway
from mnist_serving.observability.tracing import Tracing
from mnist_serving.repositories.local import Loader
from mnist_serving.settings import Settings


@contextlib.asynccontextmanager
async def in_process(
    settings: Settings, load: Loader | None = None, tracing: Tracing | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway's REST app in this process (no sockets) with its model loaded."""
    gateway = build_gateway(settings, load=load, tracing=tracing)
    async with gateway.model_loaded():
        transport = httpx.ASGITransport(app=gateway.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def b64_png(array: np.ndarray) -> dict[str, str]:
    return {"b64": base64.b64encode(png_bytes(array)).decode()}
