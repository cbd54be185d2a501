"""JSON bodies ⇄ core calls for the REST adapter: TF Serving's shapes and the digits API's.

Pure functions, no HTTP: every malformed body becomes an :class:`InvalidInput` whose message
names what was wrong (the messages TF Serving uses where it has one).
"""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import Any

import numpy as np
import orjson

from mnist_contract.model import (
    INPUT_NAME,
    MODEL_NAME,
    PREDICT_METHOD,
    SIGNATURES,
    top_k_problem,
)
from mnist_contract.model import top_k as rank
from mnist_serving.adapters.rest.json_rows import split_instances
from mnist_serving.core.inference import ClassifyResult, DigitImage, PredictResult
from mnist_serving.errors import InvalidInput, PayloadTooLarge
from mnist_serving.repositories.protocol import ServedVersion, VersionStatus

_JSON_OPTS = orjson.OPT_SERIALIZE_NUMPY


def dumps(doc: Any) -> bytes:
    """Strict JSON: NaN and infinity become null, never bare tokens."""
    return orjson.dumps(doc, option=_JSON_OPTS)


def loads(body: bytes, max_depth: int = 16) -> Any:
    if not body:
        raise InvalidInput("request body is empty; expected a JSON object")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc) or "recursion" in str(exc).lower():  # orjson's own cap
            raise InvalidInput(f"JSON nests deeper than {max_depth} levels") from None
        raise InvalidInput(f"malformed JSON: {exc}") from exc
    check_depth(doc, max_depth)
    return doc


def loads_predict(body: bytes, max_depth: int = 16) -> Any:
    """:func:`loads` for a ``:predict`` body, with its ``instances`` array of numbers read by
    :mod:`~mnist_serving.adapters.rest.json_rows` when it can (the same values, a fraction of the cost)."""
    split = split_instances(body, max_depth)
    if split is not None:
        rest, instances = split
        try:
            doc = orjson.loads(rest)
        except orjson.JSONDecodeError:
            doc = None  # the usual path names what is wrong
        # The placeholder must be what the top-level "instances" member holds.
        if isinstance(doc, dict) and type(doc.get("instances")) is int and doc["instances"] == 0:
            check_depth(doc, max_depth)
            doc["instances"] = instances
            return doc
    return loads(body, max_depth)


def check_depth(doc: Any, max_depth: int) -> None:
    """Refuse nesting deeper than ``max_depth``, following every object member and the first
    element of each array. Arrays must be regular to become tensors, so a deeper element
    further along fails that check anyway; following only the first keeps this O(depth)
    instead of a walk over every pixel."""
    stack = [(doc, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children = list(node.values())
        elif isinstance(node, list) and node:
            children = [node[0]]
        else:
            continue
        if level >= max_depth and any(isinstance(c, dict | list) for c in children):
            raise InvalidInput(f"JSON nests deeper than {max_depth} levels")
        stack.extend((child, level + 1) for child in children)


# Content-Encoding → zlib's window bits: gzip's framing, or zlib's (what HTTP calls deflate).
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def inflate(body: bytes, limit: int, encoding: str = "gzip") -> bytes:
    """Decompress a gzip (or deflate) body, stopping at ``limit`` bytes (a bomb is refused
    early)."""
    inflater = zlib.decompressobj(_WBITS[encoding])
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInput(f"body is not valid {encoding} ({exc})") from exc
    if len(out) > limit:
        raise PayloadTooLarge(f"decompressed body exceeds the {limit:,}-byte limit")
    if not inflater.eof:
        raise InvalidInput(f"{encoding} body is truncated")
    return out


# -- TF Serving predict ------------------------------------------------------------------


def parse_predict(doc: Any) -> tuple[str, dict[str, np.ndarray], bool]:
    """(signature name, named input arrays, row format?) from a ``:predict`` body."""
    if not isinstance(doc, dict):
        raise InvalidInput("request body must be a JSON object")
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise InvalidInput(
            "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist"
        )
    if not (has_instances or has_inputs):
        raise InvalidInput("Missing 'inputs' or 'instances' key")
    signature = doc.get("signature_name", "")
    if not isinstance(signature, str):
        raise InvalidInput("'signature_name' must be a string")
    if has_instances:
        return signature, _rows(doc["instances"]), True
    return signature, _columns(doc["inputs"]), False


def _rows(instances: Any) -> dict[str, np.ndarray]:
    if isinstance(instances, np.ndarray):  # already read by loads_predict
        return {INPUT_NAME: instances}
    if not isinstance(instances, list):
        raise InvalidInput("'instances' must be a JSON array with one element per example")
    if not instances:
        raise InvalidInput("No values in 'instances' array")
    if isinstance(instances[0], dict):
        names = set(instances[0])
        for i, row in enumerate(instances):
            if not isinstance(row, dict) or set(row) != names:
                raise InvalidInput(
                    f"instance {i} does not have the same named inputs as instance 0 ({sorted(names)})"
                )
        return {name: _array([row[name] for row in instances], name) for name in names}
    return {INPUT_NAME: _array(instances, "instances")}


def _columns(inputs: Any) -> dict[str, np.ndarray]:
    if isinstance(inputs, dict):
        if not inputs:
            raise InvalidInput("'inputs' object names no input")
        return {name: _array(value, name) for name, value in inputs.items()}
    return {INPUT_NAME: _array(inputs, "inputs")}


def _array(value: Any, what: str) -> np.ndarray:
    try:
        # Values beyond float32 become inf here and are refused by the core's finiteness check.
        with np.errstate(over="ignore"):
            array = np.array(value, dtype=np.float32)
    except (ValueError, TypeError) as exc:
        reason = (
            "rows of different lengths"
            if "inhomogeneous" in str(exc) or "sequence" in str(exc)
            else "values that are not numbers"
        )
        raise InvalidInput(f"'{what}' is not a numeric tensor: {reason}") from exc
    if array.ndim == 0:
        raise InvalidInput(f"'{what}' must be a list of examples, got a single number")
    return array


def render_predict(result: PredictResult, row_format: bool) -> dict[str, Any]:
    (output,) = result.outputs.values()  # each signature has exactly one output
    return {"predictions": output} if row_format else {"outputs": output}


def render_status(statuses: list[VersionStatus]) -> dict[str, Any]:
    return {
        "model_version_status": [
            {
                "version": str(s.version),
                "state": s.state,
                "status": {"error_code": "UNKNOWN" if s.error else "OK", "error_message": s.error},
            }
            for s in statuses
        ]
    }


def _tensor_info(shape: tuple[int, ...]) -> dict[str, Any]:
    return {
        "dtype": "DT_FLOAT",
        "tensor_shape": {
            "dim": [{"size": str(d), "name": ""} for d in shape],
            "unknown_rank": False,
        },
        "name": "",
    }


def signature_defs() -> dict[str, Any]:
    """The signature table (:data:`mnist_contract.model.SIGNATURES`) as TF Serving's JSON."""
    return {
        name: {
            "inputs": {INPUT_NAME: _tensor_info(s.batched_input_shape)},
            "outputs": {s.output: _tensor_info(s.batched_output_shape)},
            "method_name": PREDICT_METHOD,
        }
        for name, s in SIGNATURES.items()
    }


def render_metadata(served: ServedVersion) -> dict[str, Any]:
    return {
        "model_spec": {"name": MODEL_NAME, "signature_name": "", "version": str(served.version)},
        "metadata": {"signature_def": {"signature_def": signature_defs()}},
    }


# -- the digits API ----------------------------------------------------------------------


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


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body as sent (no or ``identity`` encoding) or inflated (gzip, deflate)."""
    if encoding is None or encoding.strip().lower() in ("", "identity"):
        return body
    name = encoding.strip().lower()
    if name in _WBITS:
        return inflate(body, limit, name)
    raise InvalidInput(f"unsupported Content-Encoding {encoding!r}; use gzip, deflate or none")
