"""Where models live on disk: ``<model_dir>/mnist/<N>/``, and the files a version folder holds.

A version is a folder whose name is a positive whole number (ASCII digits); the newest is the
highest. Hidden folders (an export in progress) and anything else are not versions. TF Serving
applies the same rule, so a folder the gateway serves is one TF Serving loads.
"""

from __future__ import annotations

from pathlib import Path

from mnist_contract.model import MODEL_NAME

TFLITE_FILE = "model.tflite"
# The same model quantised to 8-bit integers (float input and output), written only when it
# passed the export's checks; the gateway serves it by default when a version has it.
TFLITE_INT8_FILE = "model_int8.tflite"
KERAS_FILE = "model.keras"
MODEL_CARD_FILE = "model_card.json"
# The PredictionLog records TF Serving replays at load, at TF Serving's path.
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
# Largest version number: TF Serving's versions are int64.
MAX_VERSION = 2**63 - 1


def model_base(model_dir: Path) -> Path:
    """The folder that holds the model's version folders."""
    return model_dir / MODEL_NAME


def is_version_name(name: str) -> bool:
    """True for a positive whole number written in ASCII digits (TF Serving's int64 range)."""
    return name.isascii() and name.isdigit() and 0 < int(name) <= MAX_VERSION


def version_dirs(base: Path) -> dict[int, Path]:
    """Version number → folder for the versions under ``base`` (a missing ``base`` has none)."""
    try:
        entries = list(base.iterdir())
    except OSError:
        return {}
    return {int(p.name): p for p in entries if is_version_name(p.name) and p.is_dir()}
