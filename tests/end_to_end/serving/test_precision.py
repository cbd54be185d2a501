"""The int8 model by default, the float one a flag away, and the precision said where a user
looks: ``/readyz`` and ``mnist_model_info``."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mnist_contract.layout import TFLITE_INT8_FILE
from mnist_serving.settings import Settings
from mnist_training import export
from tests.helpers.gateways import in_process
from tests.helpers.metrics import samples_of


@pytest.fixture(scope="module")
def with_int8(model_dir: Path, digits, tmp_path_factory) -> Path:
    """The fixture model's version with an int8 file written beside the float one (the export
    checks would not publish it for a model trained on 3,000 digits; the gateway's choice of
    file is what is tested here)."""
    root = tmp_path_factory.mktemp("int8-models")
    version = root / "mnist" / "1"
    shutil.copytree(model_dir / "mnist" / "1", version)
    representative = (digits["x_train"][:200].astype(np.float32) / 255.0)[..., None]
    export.write_tflite_int8(version, version / TFLITE_INT8_FILE, representative)
    return root


async def _served(settings: Settings, digits) -> tuple[dict, dict, np.ndarray]:
    async with in_process(settings) as api:
        ready = (await api.get("/readyz")).json()
        info = {
            labels: value
            for (name, labels), value in samples_of((await api.get("/metrics")).text).items()
            if name == "mnist_model_info"
        }
        body = digits["x_test"][:100].tobytes()
        answer = await api.post(
            "/v1/digits:classify",
            content=body,
            headers={"Content-Type": "application/octet-stream"},
        )
    probabilities = np.array([p["probabilities"] for p in answer.json()["predictions"]])
    return ready, info, probabilities


def _precision(info: dict) -> str:
    ((labels, _),) = info.items()
    return dict(labels)["precision"]


async def test_int8_is_the_default_and_fp32_a_flag_away(with_int8, digits) -> None:
    ready, info, int8 = await _served(Settings(model_dir=with_int8), digits)
    assert ready["precision"] == "int8" and ready["runtime"] == "litert"
    assert _precision(info) == "int8"
    ready, info, fp32 = await _served(Settings(model_dir=with_int8, precision="fp32"), digits)
    assert ready["precision"] == "fp32" and _precision(info) == "fp32"
    # The same model, quantised: its own tolerance, far from what a CPU's rounding moves
    # (int8 kernels differ across CPUs; the full model's export check measures 0.04 at most).
    assert (int8.argmax(1) == fp32.argmax(1)).mean() >= 0.95
    assert np.abs(int8 - fp32).mean() < 0.02


async def test_a_version_without_a_checked_int8_file_serves_its_float_one(
    model_dir, digits
) -> None:
    assert not (model_dir / "mnist" / "1" / TFLITE_INT8_FILE).exists()  # as the fixture made it
    ready, info, _ = await _served(Settings(model_dir=model_dir), digits)
    assert ready["precision"] == "fp32" and _precision(info) == "fp32"
