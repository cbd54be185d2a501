"""The OpenAPI document is valid OpenAPI, lists every route with its parameters, and shows keys and
rate limits only when they are on."""

from __future__ import annotations

import re
from pathlib import Path

from openapi_spec_validator import validate

from mnist_serving.adapters.rest.openapi import document
from mnist_serving.adapters.rest.routes import ROUTES
from mnist_serving.settings import Settings


def _settings(**overrides: object) -> Settings:
    return Settings(model_dir=Path("models"), **overrides)  # type: ignore[arg-type]


def test_the_document_is_valid_openapi_for_every_kind_of_deployment() -> None:
    keyed = _settings(api_keys={"ci": "ci-key-0123456789abcdef"}, rate_limit_per_second=5.0)
    for settings in (_settings(), keyed, _settings(max_images_per_request=8)):
        validate(document(ROUTES, settings))  # raises with the reason when it is not


def test_every_route_and_path_parameter_is_in_the_document() -> None:
    doc = document(ROUTES, _settings())
    for route in ROUTES:
        if not route.in_document:
            continue
        operation = doc["paths"][route.template][route.method.lower()]
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert declared == set(re.findall(r"{(\w+)}", route.template)), route.template
        assert "500" in operation["responses"]


def test_keys_and_rate_limits_appear_only_when_on() -> None:
    plain = document(ROUTES, _settings())
    assert "securitySchemes" not in plain["components"]
    predict = plain["paths"]["/v1/models/{model}:predict"]["post"]
    assert {"401", "429"}.isdisjoint(predict["responses"])
    keyed = document(
        ROUTES,
        _settings(
            api_keys={"ci": "ci-key-0123456789abcdef"},
            rate_limit_per_second=1.0,
            open_routes=["healthz"],
        ),
    )
    predict = keyed["paths"]["/v1/models/{model}:predict"]["post"]
    assert {"401", "429"} <= set(predict["responses"]) and predict["security"]
    assert "security" not in keyed["paths"]["/healthz"]["get"]
    assert keyed["paths"]["/readyz"]["get"]["security"]  # not listed as open
