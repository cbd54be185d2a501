"""Assemble a gateway from settings: metrics → model store → core → REST app.

settings = Settings(model_dir=Path("models"))
app = build_app(settings)          # the model loads when the app starts
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from mnist_serving.core import InferenceCore
from mnist_serving.grpc_server import GrpcGateway
from mnist_serving.metrics import create_metrics
from mnist_serving.model_config import ModelConfigError, read_model_config
from mnist_serving.model_store import ModelStore
from mnist_serving.rest import create_app
from mnist_serving.settings import Settings, SettingsError


def build_core(settings: Settings, registry: CollectorRegistry | None = None) -> InferenceCore:
    metrics = create_metrics(registry)
    return InferenceCore(settings, metrics, ModelStore(settings, metrics))


def build_app(settings: Settings, core: InferenceCore | None = None) -> FastAPI:
    settings.check_model_present()
    if settings.model_config_file is not None:
        try:  # a bad file at start is a startup error; later edits are checked by the watcher
            read_model_config(settings.model_config_file)
        except ModelConfigError as exc:
            raise SettingsError(str(exc)) from None
    core = core or build_core(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await core.store.start()
        # Move everything built at start-up out of the collector's sight: full collections then
        # scan only per-request garbage, which keeps their pauses out of the latency tail.
        gc.collect()
        gc.freeze()
        grpc_gateway = None
        if settings.grpc_port >= 0:
            # Same event loop as REST: the batcher's queue and futures are shared.
            grpc_gateway = GrpcGateway(core, settings)
            app.state.grpc_port = await grpc_gateway.start(settings.host, settings.grpc_port)
        try:
            yield
        finally:
            if grpc_gateway is not None:
                await grpc_gateway.stop(grace=5)
            await core.store.close()

    app = create_app(core, lifespan)
    app.state.core = core
    app.state.grpc_port = None
    return app
