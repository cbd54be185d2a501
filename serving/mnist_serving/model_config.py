"""Which versions to serve and what the labels point at: the policy, labels and canary split.

Given by settings (``--version-policy``, ``--version-labels``, ``--canary-weight``) or by a JSON
file (``--model-config-file``) that the gateway re-reads whenever it changes::

    {
      "version_policy": {"latest": 2},          # or {"specific": [3, 4]} or {"all": true}
      "labels": {"stable": 3, "canary": 4},
      "canary_weight": 0.1,                      # share of unpinned requests sent to "canary"
      "shadow_weight": 0.5                       # share of requests mirrored to "shadow"
    }

Requests that name no version go to ``stable`` when that label is set (else to the newest
version), except a ``canary_weight`` share that goes to ``canary``. Rolling back is moving a
label back. A ``shadow_weight`` share of client requests is also mirrored to the ``shadow``
label's version, whose answers are compared and never returned (:mod:`mnist_serving.core.shadow`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

KEYS = ("version_policy", "labels", "canary_weight", "shadow_weight", "rollout")


class ModelConfigError(ValueError):
    """The policy, labels or config file are unusable; the message says what and where."""


@dataclass(frozen=True)
class VersionPolicy:
    """TF Serving's three policies: the newest ``latest`` versions, ``specific`` ones, or all."""

    latest: int | None = 1
    specific: tuple[int, ...] = ()

    def select(self, available: Iterable[int]) -> set[int]:
        versions = sorted(set(available))
        if self.specific:
            return set(self.specific) & set(versions)
        if self.latest is None:
            return set(versions)
        return set(versions[-self.latest :])

    def describe(self) -> str:
        if self.specific:
            return "specific:" + ",".join(map(str, self.specific))
        return "all" if self.latest is None else f"latest:{self.latest}"

    @classmethod
    def parse(cls, text: str) -> VersionPolicy:
        """``latest:N``, ``all`` or ``specific:V1,V2`` (the ``--version-policy`` flag)."""
        kind, _, arg = text.strip().partition(":")
        if kind == "all" and not arg:
            return cls(latest=None)
        if kind == "latest":
            return cls(latest=_positive(arg or "1", "latest"))
        if kind == "specific" and arg:
            return cls(
                latest=None, specific=tuple(_positive(v, "specific") for v in arg.split(","))
            )
        raise ModelConfigError(
            f"version policy {text!r} is not one of latest:N, all, specific:V1,V2"
        )

    @classmethod
    def from_json(cls, doc: Any) -> VersionPolicy:
        if not isinstance(doc, dict) or len(doc) != 1:
            raise ModelConfigError(
                'version_policy must be one of {"latest": N}, {"specific": [V, ...]}, {"all": true}'
            )
        ((kind, arg),) = doc.items()
        if kind == "latest":
            return cls(latest=_positive(arg, "latest"))
        if kind == "all" and arg is True:
            return cls(latest=None)
        if kind == "specific" and isinstance(arg, list) and arg:
            return cls(latest=None, specific=tuple(_positive(v, "specific") for v in arg))
        raise ModelConfigError(f"version_policy {json.dumps(doc)} is not understood")


@dataclass(frozen=True)
class Thresholds:
    """A rollout's knobs (:mod:`mnist_serving.core.rollout`): the model config file's
    ``rollout`` object overrides any of them, e.g. ``{"min_agreement": 0.99}``."""

    shadow_weight: float = 0.5  # share of requests mirrored while in shadow
    canary_steps: tuple[float, ...] = (0.05, 0.25, 0.5)
    shadow_images: int = 500  # mirrored images before the shadow step decides
    step_requests: int = 300  # candidate requests before a canary step decides
    min_step_seconds: float = 10.0
    min_observations: int = 20  # a gate judges from this many images or requests on
    min_agreement: float = 0.97  # shadow: share of images with the stable version's digit
    max_error_rate_increase: float = 0.01  # canary: candidate's error share − stable's
    max_latency_ratio: float = 1.5  # candidate's p99 / stable's p99 …
    latency_slack_seconds: float = 0.005  # … once past stable's p99 + this
    max_confidence_drop: float = 0.05  # stable's mean confidence − candidate's

    @classmethod
    def from_json(cls, doc: Any) -> Thresholds:
        if not isinstance(doc, dict):
            raise ModelConfigError('rollout must be an object like {"min_agreement": 0.99}')
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(doc) - set(known))
        if unknown:
            raise ModelConfigError(
                f"rollout: unknown key(s) {', '.join(unknown)}; expected {', '.join(known)}"
            )
        values: dict[str, Any] = {}
        for name, value in doc.items():
            if name == "canary_steps":
                if (
                    not isinstance(value, list)
                    or not value
                    or not all(_number(v) and 0 < v < 1 for v in value)
                    or value != sorted(value)
                ):
                    raise ModelConfigError(
                        "rollout: canary_steps must be rising shares between 0 and 1"
                    )
                values[name] = tuple(float(v) for v in value)
            elif not _number(value) or value < 0:
                raise ModelConfigError(f"rollout: {name} must be a number ≥ 0")
            else:
                values[name] = type(getattr(cls(), name))(value)
        return cls(**values)


@dataclass(frozen=True)
class ModelConfig:
    policy: VersionPolicy = field(default_factory=VersionPolicy)
    labels: dict[str, int] = field(default_factory=dict)
    canary_weight: float = 0.0
    shadow_weight: float = 0.0
    rollout: Thresholds = field(default_factory=lambda: Thresholds())

    def __post_init__(self) -> None:
        for label, version in self.labels.items():
            if not label or not isinstance(version, int) or isinstance(version, bool):
                raise ModelConfigError(f"label {label!r} must map to a version number")
            if version < 1:
                raise ModelConfigError(
                    f"label {label!r} points at version {version}; versions are ≥ 1"
                )
        for name, label in (("canary_weight", "canary"), ("shadow_weight", "shadow")):
            weight = getattr(self, name)
            if not 0.0 <= weight <= 1.0:
                raise ModelConfigError(f"{name} must be between 0 and 1, got {weight}")
            if weight and label not in self.labels:
                raise ModelConfigError(
                    f"{name} is set but no {label!r} label says where to send it"
                )


def read_model_config(path: Path) -> tuple[bytes, ModelConfig]:
    """The file's bytes (to notice a later edit) and what they say; every problem is a
    :class:`ModelConfigError` naming it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelConfigError(f"cannot read model config {path}: {exc.strerror}") from None
    return data, parse_model_config(data, path)


def parse_model_config(data: bytes, path: Path) -> ModelConfig:
    """The config file's content → :class:`ModelConfig` (``path`` names it in messages)."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelConfigError(f"model config {path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ModelConfigError(f"model config {path} must be a JSON object")
    unknown = sorted(set(doc) - set(KEYS))
    if unknown:
        raise ModelConfigError(
            f"model config {path}: unknown key(s) {', '.join(unknown)}; expected {', '.join(KEYS)}"
        )
    labels = doc.get("labels", {})
    if not isinstance(labels, dict):
        raise ModelConfigError(
            f'model config {path}: labels must be an object like {{"stable": 3}}'
        )
    weights = {name: doc.get(name, 0.0) for name in ("canary_weight", "shadow_weight")}
    for name, weight in weights.items():
        if not isinstance(weight, int | float) or isinstance(weight, bool):
            raise ModelConfigError(f"model config {path}: {name} must be a number")
    try:
        policy = (
            VersionPolicy.from_json(doc["version_policy"])
            if "version_policy" in doc
            else VersionPolicy()
        )
        rollout = Thresholds.from_json(doc["rollout"]) if "rollout" in doc else Thresholds()
        return ModelConfig(
            policy,
            dict(labels),
            float(weights["canary_weight"]),
            float(weights["shadow_weight"]),
            rollout,
        )
    except ModelConfigError as exc:
        raise ModelConfigError(f"model config {path}: {exc}") from None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _positive(value: Any, what: str) -> int:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ModelConfigError(f"{what} needs positive whole numbers, got {value!r}")
    return value
