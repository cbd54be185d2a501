"""Assemble a gateway from settings: metrics → model store → core → REST app.

settings = Settings(model_dir=Path("models"))
app = build_app(settings)          # the model loads when the app starts
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from mnist_serving.core import InferenceCore
from mnist_serving.metrics import create_metrics
from mnist_serving.model_store import ModelStore
from mnist_serving.rest import create_app
from mnist_serving.settings import Settings


def build_core(settings: Settings, registry: CollectorRegistry | None = None) -> InferenceCore:
    metrics = create_metrics(registry)
    return InferenceCore(settings, metrics, ModelStore(settings, metrics))


def build_app(settings: Settings, core: InferenceCore | None = None) -> FastAPI:
    settings.check_model_present()
    core = core or build_core(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await core.store.load_newest()
        try:
            yield
        finally:
            await core.store.close()

    app = create_app(core, lifespan)
    app.state.core = core
    return app
