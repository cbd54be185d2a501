"""The rollout's decisions on hand-made figures: shadow, the canary steps, promotion, a
rollback on each gate, pause, and nothing decided on too little data."""

from __future__ import annotations

from dataclasses import replace

from mnist_serving.core.rollout import (
    Figures,
    RolloutState,
    begin,
    decide,
    gates,
    promote,
    roll_back,
)
from mnist_serving.model_config import Thresholds

T = Thresholds(min_step_seconds=10)
GOOD_SHADOW = Figures(mirrored_images=600, agreeing_images=598)
GOOD_CANARY = Figures(
    candidate_requests=400,
    candidate_errors=0,
    stable_requests=8000,
    stable_errors=2,
    candidate_p99=0.006,
    stable_p99=0.005,
    candidate_confidence=0.985,
    stable_confidence=0.987,
)


def _started() -> RolloutState:
    return begin(RolloutState("stable", 3), newest=4, now=0.0)


def test_a_new_version_goes_shadow_then_every_step_then_promoted() -> None:
    state = _started()
    assert (state.phase, state.stable, state.candidate) == ("shadow", 3, 4)
    assert state.traffic(T) == (0.0, 0.5)
    state = decide(state, GOOD_SHADOW, T, now=11)
    assert state.phase == "canary" and state.traffic(T) == (0.05, 0.0)
    for now, weight in ((22, 0.25), (33, 0.5)):
        state = decide(state, GOOD_CANARY, T, now=now)
        assert state.traffic(T) == (weight, 0.0)
    state = decide(state, GOOD_CANARY, T, now=44)
    assert (state.phase, state.stable, state.candidate) == ("promoted", 4, None)
    assert state.traffic(T) == (0.0, 0.0)


def test_a_step_is_held_until_it_has_seen_enough_for_long_enough() -> None:
    state = _started()
    assert decide(state, GOOD_SHADOW, T, now=5) == state  # too soon
    few = Figures(mirrored_images=100, agreeing_images=100)
    assert decide(state, few, T, now=60) == state  # too few images
    canary = decide(state, GOOD_SHADOW, T, now=11)
    assert decide(canary, replace(GOOD_CANARY, candidate_requests=10), T, now=60) == canary
    assert decide(canary, Figures(), T, now=60) == canary  # no data: undecided, held


def test_a_candidate_that_answers_other_digits_is_stopped_in_shadow() -> None:
    state = decide(_started(), Figures(mirrored_images=40, agreeing_images=4), T, now=1)
    assert state.phase == "rolled_back" and "agreement 0.1 past 0.97" in state.reason
    assert state.traffic(T) == (0.0, 0.0)  # no client traffic, no mirror


def test_each_canary_gate_rolls_back_at_once() -> None:
    canary = decide(_started(), GOOD_SHADOW, T, now=11)
    for change, gate in (
        ({"candidate_errors": 40}, "error_rate_increase"),
        ({"candidate_p99": 0.060}, "p99_latency_ratio"),
        ({"candidate_confidence": 0.80}, "confidence_drop"),
    ):
        state = decide(canary, replace(GOOD_CANARY, **change), T, now=12)  # before min time
        assert state.phase == "rolled_back" and gate in state.reason, (gate, state)


def test_latency_a_few_milliseconds_over_stable_is_not_a_failure() -> None:
    near = replace(GOOD_CANARY, candidate_p99=0.012, stable_p99=0.005)  # 7 ms over: slack 5
    (_, latency, _) = gates("canary", near, T)
    assert latency.passed is True and latency.figure is not None and latency.figure < 1.5


def test_pause_holds_the_step_but_a_failed_gate_still_rolls_back() -> None:
    canary = replace(decide(_started(), GOOD_SHADOW, T, now=11), paused=True)
    assert decide(canary, GOOD_CANARY, T, now=100) == canary
    failed = decide(canary, replace(GOOD_CANARY, candidate_errors=100), T, now=100)
    assert failed.phase == "rolled_back" and not failed.paused


def test_an_operator_promotes_or_rolls_back_from_any_step() -> None:
    state = _started()
    assert promote(state, 5, "operator").stable == 4
    back = roll_back(state, 5, "operator abort")
    assert (back.phase, back.stable, back.reason) == ("rolled_back", 3, "operator abort")


def test_an_older_or_same_version_starts_nothing_and_the_first_version_is_stable() -> None:
    assert begin(RolloutState("stable", None), 1, 0.0).stable == 1
    stable = RolloutState("stable", 3)
    assert begin(stable, 3, 0.0) == stable and begin(stable, 2, 0.0) == stable
    running = _started()
    assert begin(running, 5, 1.0) == running  # one rollout at a time
    back = roll_back(running, 2.0, "bad")
    assert begin(back, 4, 3.0) == back  # the version rolled back is not tried again
    assert begin(back, 5, 3.0).candidate == 5  # a newer one is
