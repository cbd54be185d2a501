"""The REST route table: every route the gateway serves is one row of :data:`ROUTES`.

The Starlette app (:mod:`~mnist_serving.adapters.rest.app`) and the OpenAPI document
(:mod:`~mnist_serving.adapters.rest.openapi`) are both built from it, so the document lists
exactly what is served. A row names the API whose endpoints answer it (``tfserving``,
``digits``, ``open_inference``, ``operations``), the endpoint method and the request's kind
(``inference`` requests take an admission slot; ``operational`` ones are not counted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from starlette.convertors import StringConvertor, register_url_convertor

from mnist_serving.adapters.rest.responses import JSON
from mnist_serving.core.accounting import Kind

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
Api = Literal["tfserving", "digits", "open_inference", "operations"]


@dataclass(frozen=True)
class Route:
    """One REST route: where it is, which endpoint answers, and what the document says of it."""

    method: Literal["GET", "POST"]
    path: str
    api: Api  # whose endpoints answer
    endpoint: str  # the method of that API's endpoints object
    summary: str
    tag: str
    kind: Kind = (
        "api"  # inference requests take an admission slot; operational ones are not counted
    )
    label: str = (
        ""  # the route label in metrics (and the open_routes name); the endpoint's name if empty
    )
    media_type: str = JSON  # of the success answer
    in_document: bool = True
    protocol: str = "rest"  # the protocol label in metrics

    @property
    def route_label(self) -> str:
        return self.label or self.endpoint

    @property
    def template(self) -> str:
        """The path as OpenAPI writes it: ``{model}``, without Starlette's ``:segment``."""
        return re.sub(r"{(\w+):\w+}", r"{\1}", self.path)


class _Segment(StringConvertor):
    """A path segment without ':': ``/v1/models/mnist:predict`` is the predict route, never
    the status route of a model named ``mnist:predict``."""

    regex = "[^/:]+"


register_url_convertor("segment", _Segment())

TFSERVING_TAG = "TF Serving"
V2_TAG = "Open Inference Protocol"
OPERATIONS_TAG = "operations"


def _tfserving_routes() -> list[Route]:
    rows = []
    for prefix, which in (
        ("/v1/models/{model:segment}", "the default version"),
        ("/v1/models/{model:segment}/versions/{version:segment}", "one version"),
        ("/v1/models/{model:segment}/labels/{label:segment}", "a labelled version"),
    ):
        rows += [
            Route(
                "GET",
                prefix,
                api="tfserving",
                endpoint="status",
                summary=f"Model status ({which})",
                tag=TFSERVING_TAG,
            ),
            Route(
                "GET",
                prefix + "/metadata",
                api="tfserving",
                endpoint="metadata",
                summary=f"Signatures ({which})",
                tag=TFSERVING_TAG,
            ),
            Route(
                "POST",
                prefix + ":predict",
                api="tfserving",
                endpoint="predict",
                summary=f"Predict, row (instances) or columnar (inputs) format ({which})",
                tag=TFSERVING_TAG,
                kind="inference",
            ),
        ]
    return rows


def _v2(
    method: Literal["GET", "POST"], path: str, endpoint: str, label: str, summary: str
) -> Route:
    """An Open Inference Protocol row: its probes are operational routes (``healthz``,
    ``readyz``), ``infer`` an inference route, the rest API calls."""
    kind: Kind = "api"
    if label in ("healthz", "readyz"):
        kind = "operational"
    elif endpoint == "infer":
        kind = "inference"
    protocol = "rest" if kind == "operational" else "v2_rest"
    return Route(
        method, path, "open_inference", endpoint, summary, V2_TAG, kind, label, protocol=protocol
    )


def _v2_routes() -> list[Route]:
    """The Open Inference Protocol's routes; the ``/versions/{v}`` segment is optional."""
    rows = [
        _v2("GET", "/v2/health/live", "live", "healthz", "V2 liveness: the process answers"),
        _v2(
            "GET",
            "/v2/health/ready",
            "ready",
            "readyz",
            "V2 readiness: the model is loaded and the gateway is not draining",
        ),
        _v2("GET", "/v2", "server_metadata", "", "V2 server metadata: name, version, extensions"),
    ]
    for prefix, which in (
        ("/v2/models/{model:segment}", "the default version"),
        ("/v2/models/{model:segment}/versions/{model_version:segment}", "one version or label"),
    ):
        rows += [
            _v2(
                "GET",
                prefix,
                "model_metadata",
                "",
                f"V2 model metadata: versions, inputs, outputs ({which})",
            ),
            _v2("GET", prefix + "/ready", "model_ready", "", f"V2 model readiness ({which})"),
            _v2(
                "POST",
                prefix + "/infer",
                "infer",
                "",
                f"V2 inference, JSON or binary tensors ({which})",
            ),
        ]
    return rows


def _operational(
    path: str,
    endpoint: str,
    summary: str,
    media_type: str = JSON,
    *,
    label: str = "",
    in_document: bool = True,
) -> Route:
    return Route(
        "GET",
        path,
        api="operations",
        endpoint=endpoint,
        summary=summary,
        tag=OPERATIONS_TAG,
        kind="operational",
        label=label,
        media_type=media_type,
        in_document=in_document,
    )


ROUTES: tuple[Route, ...] = (
    *_tfserving_routes(),
    *_v2_routes(),
    Route(
        "POST",
        "/v1/digits:classify",
        api="digits",
        endpoint="classify",
        summary="Classify images of digits (JSON, image files, multipart or raw frames)",
        tag="digits",
        kind="inference",
    ),
    _operational("/healthz", "healthz", "Liveness: the process answers"),
    _operational(
        "/readyz",
        "readyz",
        "Readiness: the model is loaded and warmed up, and the gateway is not draining",
    ),
    _operational(
        "/v1/models/{model:segment}/drift",
        "drift_report",
        "Input drift: the last served images against the serving version's training digits",
        label="drift",
    ),
    _operational(
        "/v1/models/{model:segment}/rollout",
        "rollout_status",
        "The automatic rollout: phase, stable, candidate, step, gates (--rollout auto)",
        label="rollout",
    ),
    Route(
        "POST",
        "/v1/models/{model:segment}/rollout:{action:segment}",
        api="operations",
        endpoint="rollout_command",
        summary="Pause, resume, promote or abort the rollout in progress (a key with the "
        "admin scope)",
        tag=OPERATIONS_TAG,
        kind="admin",
        label="rollout_command",
    ),
    _operational(
        "/v1/stats",
        "stats",
        "Requests/s and p50/p99 latency of inference requests over the last minute",
    ),
    _operational("/metrics", "metrics", "Prometheus metrics (text format)", PROMETHEUS_TEXT),
    _operational(
        "/monitoring/prometheus/metrics",
        "tfserving_metrics",
        "TF Serving's metric names at TF Serving's path",
        PROMETHEUS_TEXT,
        label="metrics",
    ),
    _operational("/openapi.json", "openapi", "This document", label="docs"),
    _operational("/docs", "docs", "The API's page", "text/html", in_document=False),
    _operational("/", "demo", "The demo page", "text/html", in_document=False),
)
