"""The operational routes: liveness, readiness, recent traffic, metrics, the API's document
and page, and the demo page."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from mnist_contract.model import MODEL_NAME
from mnist_serving.adapters.rest.incoming import RestRequest
from mnist_serving.adapters.rest.json_body import dumps, json_response
from mnist_serving.adapters.rest.openapi import DOCS_HTML
from mnist_serving.adapters.rest.responses import JSON, Response
from mnist_serving.adapters.rest.routes import OPENMETRICS, PROMETHEUS_TEXT
from mnist_serving.core.accounting import RequestAccounting, RequestRecord
from mnist_serving.core.drift import DriftMonitor
from mnist_serving.core.inference import InferenceCore
from mnist_serving.core.rollout_driver import RolloutDriver
from mnist_serving.errors import Conflict, servable_not_found
from mnist_serving.observability.metrics import Metrics, render
from mnist_serving.observability.tfserving_metrics import render_tfserving, tfserving_registry
from mnist_serving.static import DEMO_HTML


class OperationsEndpoints:
    def __init__(
        self,
        core: InferenceCore,
        accounting: RequestAccounting,
        metrics: Metrics,
        document: dict[str, Any],
        drift: DriftMonitor,
        rollout: RolloutDriver | None = None,
    ) -> None:
        self.core = core
        self.drift = drift
        self.rollout = rollout
        self.accounting = accounting
        self.registry = metrics
        self.tfserving_view = tfserving_registry(metrics, MODEL_NAME)
        self.document = dumps(document)
        self.docs_page, self.demo_page = DOCS_HTML.encode(), DEMO_HTML.encode()

    async def drift_report(self, request: Request, _record: RequestRecord) -> Response:
        if request.path_params["model"] != MODEL_NAME:
            raise servable_not_found(f"model {request.path_params['model']!r}")
        return json_response(self.drift.report())

    async def rollout_status(self, request: Request, _record: RequestRecord) -> Response:
        return json_response(self._rollout(request).status())

    async def rollout_command(self, request: RestRequest, _record: RequestRecord) -> Response:
        action = request.path_params["action"]
        return json_response(self._rollout(request).command(action))

    def _rollout(self, request: RestRequest) -> RolloutDriver:
        if request.path_params["model"] != MODEL_NAME:
            raise servable_not_found(f"model {request.path_params['model']!r}")
        if self.rollout is None:
            raise Conflict("no automatic rollout: start the gateway with --rollout auto")
        return self.rollout

    async def healthz(self, _request: Request, _record: RequestRecord) -> Response:
        return json_response({"status": "alive"})

    async def readyz(self, _request: Request, _record: RequestRecord) -> Response:
        report = self.core.readiness_report()
        return json_response(report, 200 if report["ready"] else 503)

    async def stats(self, _request: Request, _record: RequestRecord) -> Response:
        return json_response(self.accounting.stats())

    async def metrics(self, request: Request, _record: RequestRecord) -> Response:
        if "application/openmetrics-text" in request.headers.get("accept", ""):
            return Response(render(self.registry, openmetrics=True), media_type=OPENMETRICS)
        return Response(render(self.registry), media_type=PROMETHEUS_TEXT)

    async def tfserving_metrics(self, _request: Request, _record: RequestRecord) -> Response:
        return Response(render_tfserving(self.tfserving_view), media_type=PROMETHEUS_TEXT)

    async def openapi(self, _request: Request, _record: RequestRecord) -> Response:
        return Response(self.document, media_type=JSON)

    async def docs(self, _request: Request, _record: RequestRecord) -> Response:
        return Response(self.docs_page, media_type="text/html; charset=utf-8")

    async def demo(self, _request: Request, _record: RequestRecord) -> Response:
        return Response(self.demo_page, media_type="text/html; charset=utf-8")
