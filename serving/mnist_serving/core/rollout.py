"""The rollout's decisions, as pure functions of its state and the figures read since its
current step began: no clock, no file, no metric is read here (the caller passes them in).

A new version above ``stable`` becomes the candidate and goes through the steps::

    shadow ──► canary 5% ──► canary 25% ──► canary 50% ──► promoted (stable = candidate)
       │            │              │              │
       └────────────┴──────────────┴──────────────┴──► rolled_back (a gate failed)

Each step is held until it has seen enough (mirrored images in shadow, candidate requests in a
canary step) and at least ``min_step_seconds``; then its gates decide. A gate that fails rolls
back at once, whatever the step, as soon as it has ``min_observations`` to judge from; before
that it neither passes nor fails.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from mnist_serving.model_config import Thresholds

Phase = Literal["stable", "shadow", "canary", "promoted", "rolled_back"]


@dataclass(frozen=True)
class Figures:
    """What was measured since the current step began (None: no data yet)."""

    mirrored_images: int = 0
    agreeing_images: int = 0
    candidate_requests: int = 0
    candidate_errors: int = 0
    stable_requests: int = 0
    stable_errors: int = 0
    candidate_p99: float | None = None
    stable_p99: float | None = None
    candidate_confidence: float | None = None
    stable_confidence: float | None = None


@dataclass(frozen=True)
class Gate:
    name: str
    figure: float | None  # None: not enough data yet
    threshold: float
    passed: bool | None  # None: undecided


@dataclass(frozen=True)
class RolloutState:
    phase: Phase
    stable: int | None
    candidate: int | None = None
    step: int = 0  # the canary step's index in Thresholds.canary_steps
    since: float = 0.0  # when the current phase or step began (the caller's clock)
    reason: str = ""  # why the last decision was made
    paused: bool = False  # an operator holds the rollout at its current step

    def traffic(self, thresholds: Thresholds) -> tuple[float, float]:
        """(canary weight, shadow weight) the candidate gets now."""
        if self.candidate is None or self.phase not in ("shadow", "canary"):
            return 0.0, 0.0
        if self.phase == "shadow":
            return 0.0, thresholds.shadow_weight
        return thresholds.canary_steps[self.step], 0.0


def begin(state: RolloutState, newest: int, now: float) -> RolloutState:
    """A version above stable appeared: it becomes the candidate, in shadow."""
    if state.stable is None:
        return RolloutState("stable", newest, since=now, reason=f"version {newest} serves")
    if newest <= state.stable or state.phase in ("shadow", "canary"):
        return state
    if state.phase == "rolled_back" and state.candidate is not None and newest <= state.candidate:
        return state  # the version rolled back is not tried again; a newer one will be
    return RolloutState("shadow", state.stable, newest, 0, now, f"candidate {newest} in shadow")


def gates(phase: Phase, figures: Figures, t: Thresholds) -> list[Gate]:
    """The gates of ``phase`` on ``figures``."""
    f = figures
    if phase == "shadow":
        seen = f.mirrored_images >= t.min_observations
        agreement = f.agreeing_images / f.mirrored_images if seen else None
        return [_at_least("agreement", agreement, t.min_agreement)]
    if f.candidate_requests < t.min_observations:  # one slow request is not a slow version
        f = replace(f, candidate_p99=None, candidate_confidence=None, candidate_requests=0)
    error_increase = None
    if f.candidate_requests and f.stable_requests:
        error_increase = f.candidate_errors / f.candidate_requests - (
            f.stable_errors / f.stable_requests
        )
    latency = None
    if f.candidate_p99 is not None and f.stable_p99 is not None:
        latency = max(f.candidate_p99 - t.latency_slack_seconds, 0.0) / max(f.stable_p99, 1e-6)
    drop = None
    if f.candidate_confidence is not None and f.stable_confidence is not None:
        drop = f.stable_confidence - f.candidate_confidence
    return [
        _at_most("error_rate_increase", error_increase, t.max_error_rate_increase),
        _at_most("p99_latency_ratio", latency, t.max_latency_ratio),
        _at_most("confidence_drop", drop, t.max_confidence_drop),
    ]


def decide(state: RolloutState, figures: Figures, t: Thresholds, now: float) -> RolloutState:
    """The state after this look at the figures: rolled back on any failed gate, on to the
    next step once the current one has seen enough and every gate passed."""
    if state.phase not in ("shadow", "canary") or state.candidate is None:
        return state
    checked = gates(state.phase, figures, t)
    failed = [g for g in checked if g.passed is False]
    if failed:
        why = "; ".join(f"{g.name} {g.figure:.4g} past {g.threshold:g}" for g in failed)
        return replace(state, phase="rolled_back", since=now, reason=why, paused=False)
    if (
        state.paused
        or not _enough(state, figures, t, now)
        or any(g.passed is None for g in checked)
    ):
        return state
    return advance(state, t, now)


def advance(state: RolloutState, t: Thresholds, now: float) -> RolloutState:
    """The next step (an operator's promote skips to the end)."""
    if state.phase == "shadow":
        return replace(state, phase="canary", step=0, since=now, reason="shadow gates passed")
    if state.step + 1 < len(t.canary_steps):
        return replace(state, step=state.step + 1, since=now, reason="canary step passed")
    return promote(state, now, "every step passed")


def promote(state: RolloutState, now: float, reason: str) -> RolloutState:
    if state.candidate is None:
        return state
    return RolloutState("promoted", state.candidate, None, 0, now, reason)


def roll_back(state: RolloutState, now: float, reason: str) -> RolloutState:
    if state.candidate is None:
        return state
    return replace(state, phase="rolled_back", since=now, reason=reason, paused=False)


def _enough(state: RolloutState, f: Figures, t: Thresholds, now: float) -> bool:
    held = now - state.since >= t.min_step_seconds
    seen = (
        f.mirrored_images >= t.shadow_images
        if state.phase == "shadow"
        else (f.candidate_requests >= t.step_requests)
    )
    return held and seen


def _at_least(name: str, figure: float | None, threshold: float) -> Gate:
    return Gate(name, figure, threshold, None if figure is None else figure >= threshold)


def _at_most(name: str, figure: float | None, threshold: float) -> Gate:
    return Gate(name, figure, threshold, None if figure is None else figure <= threshold)
