"""The REST route table: every route the gateway serves is one row of :data:`ROUTES`.

The Starlette app (:mod:`~mnist_serving.adapters.rest.app`) and the OpenAPI document
(:mod:`~mnist_serving.adapters.rest.openapi`) are both built from it, so the document lists
exactly what is served. A row names the API whose endpoints answer it (``tfserving``,
``digits``, ``v2``, ``operations``) and the endpoint method.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from starlette.convertors import StringConvertor, register_url_convertor

from mnist_serving.adapters.rest.responses import JSON

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
Api = Literal["tfserving", "digits", "v2", "operations"]


@dataclass(frozen=True)
class Route:
    """One REST route: where it is, which endpoint answers, and what the document says of it."""

    method: Literal["GET", "POST"]
    path: str
    api: Api  # whose endpoints answer
    endpoint: str  # the method of that API's endpoints object
    name: str  # the route label in metrics; for operational routes, the open_routes name
    summary: str
    tag: str
    kind: Literal["api", "operational"] = "api"
    media_type: str = JSON  # of the success answer
    in_document: bool = True
    protocol: str = "rest"  # the protocol label in metrics

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
                "tfserving",
                "status",
                "status",
                f"Model status ({which})",
                TFSERVING_TAG,
            ),
            Route(
                "GET",
                prefix + "/metadata",
                "tfserving",
                "metadata",
                "metadata",
                f"Signatures ({which})",
                TFSERVING_TAG,
            ),
            Route(
                "POST",
                prefix + ":predict",
                "tfserving",
                "predict",
                "predict",
                f"Predict, row (instances) or columnar (inputs) format ({which})",
                TFSERVING_TAG,
            ),
        ]
    return rows


def _v2(method: Literal["GET", "POST"], path: str, endpoint: str, name: str, summary: str) -> Route:
    """A V2 row: probes are operational routes (``healthz``, ``readyz``), the rest the API."""
    if name in ("healthz", "readyz"):
        return Route(method, path, "v2", endpoint, name, summary, V2_TAG, "operational")
    return Route(method, path, "v2", endpoint, name, summary, V2_TAG, protocol="v2_rest")


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
        _v2(
            "GET",
            "/v2",
            "server_metadata",
            "server_metadata",
            "V2 server metadata: name, version, extensions",
        ),
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
                "model_metadata",
                f"V2 model metadata: versions, inputs, outputs ({which})",
            ),
            _v2(
                "GET",
                prefix + "/ready",
                "model_ready",
                "model_ready",
                f"V2 model readiness ({which})",
            ),
            _v2(
                "POST",
                prefix + "/infer",
                "infer",
                "infer",
                f"V2 inference, JSON or binary tensors ({which})",
            ),
        ]
    return rows


def _operational(
    path: str,
    endpoint: str,
    name: str,
    summary: str,
    media_type: str = JSON,
    *,
    in_document: bool = True,
) -> Route:
    return Route(
        "GET",
        path,
        "operations",
        endpoint,
        name,
        summary,
        OPERATIONS_TAG,
        "operational",
        media_type,
        in_document,
    )


ROUTES: tuple[Route, ...] = (
    *_tfserving_routes(),
    *_v2_routes(),
    Route(
        "POST",
        "/v1/digits:classify",
        "digits",
        "classify",
        "classify",
        "Classify images of digits (JSON, image files, multipart or raw frames)",
        "digits",
    ),
    _operational("/healthz", "healthz", "healthz", "Liveness: the process answers"),
    _operational(
        "/readyz",
        "readyz",
        "readyz",
        "Readiness: the model is loaded and warmed up, and the gateway is not draining",
    ),
    _operational(
        "/v1/stats",
        "stats",
        "stats",
        "Requests/s and p50/p99 latency of inference requests over the last minute",
    ),
    _operational(
        "/metrics", "metrics", "metrics", "Prometheus metrics (text format)", PROMETHEUS_TEXT
    ),
    _operational(
        "/monitoring/prometheus/metrics",
        "tfserving_metrics",
        "metrics",
        "TF Serving's metric names at TF Serving's path",
        PROMETHEUS_TEXT,
    ),
    _operational("/openapi.json", "openapi", "docs", "This document"),
    _operational("/docs", "docs", "docs", "The API's page", "text/html", in_document=False),
    _operational("/", "demo", "demo", "The demo page", "text/html", in_document=False),
)
