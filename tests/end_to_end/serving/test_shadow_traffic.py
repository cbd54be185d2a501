"""Shadow traffic on a real gateway: every protocol's inference requests (REST and gRPC; the
digits API, TF Serving's, the Open Inference Protocol's) are mirrored to the ``shadow`` label's
version, while every client gets the stable version's answer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx

from mnist_client import MnistClient
from tests.helpers.processes import start_gateway, stop_gateway
from tests.helpers.scrape import scraped
from tests.helpers.versions import wait_for


def _series(url: str, name: str, **labels: str) -> float:
    return scraped(httpx.get(url + "/metrics", timeout=10).text, name, **labels)


def test_every_protocol_is_mirrored_and_clients_get_the_stable_answer(
    tmp_path: Path, model_dir: Path, digits
) -> None:
    for version in (1, 2):  # the same model twice: the shadow must agree
        shutil.copytree(model_dir / "mnist" / "1", tmp_path / "mnist" / str(version))
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "version_policy": {"all": True},
                "labels": {"stable": 1, "shadow": 2},
                "shadow_weight": 1.0,
            }
        )
    )
    server = start_gateway(tmp_path, "--model-config-file", str(config))
    try:
        image, expected = digits["x_test"][0], int(digits["y_test"][0])
        urls = (server.url, f"grpc://{server.grpc}")
        faces = [(url, api) for url in urls for api in ("digits", "tfserving", "v2")]
        for url, api in faces:
            with MnistClient(url, api=api) as client:
                answer = client.classify(image)[0]
            assert answer.digit == expected, (url, api)
        wait_for(
            lambda: (
                _series(server.url, "mnist_shadow_requests_total", version="2", outcome="compared")
                == len(faces)
            ),
            "every protocol's request to be mirrored and compared",
        )
        assert _series(
            server.url, "mnist_shadow_images_total", version="2", agreement="agree"
        ) == len(faces)
        assert _series(server.url, "mnist_version_requests_total", version="1", code="OK") == len(
            faces
        )
        assert _series(server.url, "mnist_version_requests_total", version="2", code="OK") == 0
    finally:
        stop_gateway(server)
