"""TF Serving's REST bodies ⇄ core calls: ``:predict`` in the row (``instances``) and columnar
(``inputs``) formats, status and metadata answers. Pure functions, no HTTP: every malformed
body becomes an :class:`InvalidInput` whose message names what was wrong, in TF Serving's
words where it has them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from mnist_contract.model import INPUT_NAME, MODEL_NAME, PREDICT_METHOD, SIGNATURES
from mnist_serving.adapters.rest.json_body import check_depth, loads
from mnist_serving.adapters.rest.json_rows import split_instances
from mnist_serving.core.inference import PredictResult
from mnist_serving.errors import InvalidInput
from mnist_serving.repositories.repository import ServedVersion, VersionStatus


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
