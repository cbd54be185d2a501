"""The digits API's REST bodies ⇄ core calls: JSON images (pixel arrays or base64 files),
raw N×784 frames, options from the body or the query, and the answer. Pure functions, no HTTP.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np

from mnist_contract.model import MODEL_NAME, top_k_problem
from mnist_contract.model import top_k as rank
from mnist_serving.core.digits import ClassifyResult, DigitImage
from mnist_serving.errors import InvalidInput


def parse_digits_json(doc: Any) -> tuple[list[DigitImage], dict[str, Any]]:
    """Images and options from ``{"images": [...], "top_k": 3, ...}``."""
    if not isinstance(doc, dict):
        raise InvalidInput('request body must be a JSON object like {"images": [...]}')
    unknown = sorted(set(doc) - {"images", "top_k", "return_preprocessed", "version"})
    if unknown:
        raise InvalidInput(
            f"unknown field(s) {', '.join(unknown)}; "
            "expected images, top_k, return_preprocessed, version"
        )
    if "images" not in doc:
        raise InvalidInput(
            "missing 'images': a list of 28×28 pixel arrays or {\"b64\": ...} images"
        )
    raw = doc["images"]
    if not isinstance(raw, list):
        raise InvalidInput("'images' must be a list (one element per image)")
    images = [_digit_image(i, item) for i, item in enumerate(raw)]
    options = {k: doc[k] for k in ("top_k", "return_preprocessed", "version") if k in doc}
    return images, options


def _digit_image(index: int, item: Any) -> DigitImage:
    if isinstance(item, dict):
        if set(item) != {"b64"} or not isinstance(item["b64"], str):
            raise InvalidInput(
                f'image {index}: an object image must be {{"b64": "<base64 PNG/JPEG>"}}'
            )
        try:
            return DigitImage(encoded=base64.b64decode(item["b64"], validate=True))
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput(f"image {index}: 'b64' is not valid base64 ({exc})") from exc
    if not isinstance(item, list):
        raise InvalidInput(
            f'image {index}: expected a 2-D pixel array or {{"b64": ...}}, got {type(item).__name__}'
        )
    try:
        pixels = np.array(item)
    except ValueError as exc:
        raise InvalidInput(f"image {index}: rows have different lengths") from exc
    if pixels.dtype.kind == "b" or pixels.dtype.kind not in "iuf":
        raise InvalidInput(f"image {index}: pixels must be numbers (found {_kind(pixels)})")
    if pixels.ndim != 2:
        raise InvalidInput(
            f"image {index}: pixel array must be 2-D (28×28), got shape {list(pixels.shape)}"
        )
    return DigitImage(pixels=pixels)


def _kind(array: np.ndarray) -> str:
    return {"b": "booleans", "U": "strings", "O": "mixed or nested values"}.get(
        array.dtype.kind, str(array.dtype)
    )


def parse_octet_stream(body: bytes) -> list[DigitImage]:
    if not body or len(body) % 784:
        raise InvalidInput(
            f"application/octet-stream body must be N×784 bytes (28×28 uint8 frames), "
            f"got {len(body)} bytes"
        )
    frames = np.frombuffer(body, dtype=np.uint8).reshape(-1, 28, 28)
    return [DigitImage(pixels=f) for f in frames]


def parse_options(raw: dict[str, Any]) -> tuple[int, bool, str | None]:
    """(top_k, return_preprocessed, version) from JSON fields or query parameters."""
    top_k = raw.get("top_k", 0)
    if isinstance(top_k, str) and top_k.isascii() and top_k.isdigit():
        top_k = int(top_k)  # a query parameter
    problem = top_k_problem(top_k)
    if problem:
        raise InvalidInput(problem)
    flag = raw.get("return_preprocessed", False)
    if isinstance(flag, str):
        if flag.lower() not in ("true", "false", "1", "0"):
            raise InvalidInput(f"return_preprocessed must be true or false, got {flag!r}")
        flag = flag.lower() in ("true", "1")
    if not isinstance(flag, bool):
        raise InvalidInput(f"return_preprocessed must be true or false, got {flag!r}")
    version = raw.get("version")
    if isinstance(version, bool) or (version is not None and not isinstance(version, (str, int))):
        raise InvalidInput("version must be a version number or a label")
    return top_k, flag, None if version is None else str(version)


def render_classify(result: ClassifyResult, top_k: int, preprocessed: bool) -> dict[str, Any]:
    predictions = []
    for c in result.results:
        item: dict[str, Any] = {
            "digit": c.digit,
            "confidence": c.probabilities[c.digit],
            "probabilities": c.probabilities,
        }
        if top_k:
            item["top_k"] = [
                {"digit": d, "probability": p} for d, p in rank(c.probabilities, top_k)
            ]
        if preprocessed:
            item["preprocessed"] = c.frame
        predictions.append(item)
    return {"model_name": MODEL_NAME, "model_version": result.version, "predictions": predictions}
