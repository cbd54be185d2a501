"""Calibration as pure numbers: the fitted temperature, the calibration error, the folding."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_training import calibrate


def _answers(temperature: float, n: int = 20_000, seed: int = 0):
    """Logits whose labels are drawn from ``softmax(logits / temperature)``: a model that is
    calibrated exactly after dividing by ``temperature``."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 4, (n, 10))
    truth = calibrate.softmax(logits / temperature)
    labels = np.array([rng.choice(10, p=row) for row in truth])
    return logits, labels


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.5])
def test_the_fitted_temperature_is_the_one_the_labels_came_from(temperature) -> None:
    logits, labels = _answers(temperature)
    assert calibrate.fit_temperature(logits, labels) == pytest.approx(temperature, rel=0.05)


def test_the_error_is_small_only_for_calibrated_answers() -> None:
    logits, labels = _answers(2.0)
    fitted = calibrate.fit_temperature(logits, labels)
    calibrated = calibrate.expected_calibration_error(calibrate.softmax(logits / fitted), labels)
    raw = calibrate.expected_calibration_error(calibrate.softmax(logits), labels)
    assert calibrated < 0.02 < 0.1 < raw  # the raw logits claim far more than they know
    always_sure = np.eye(10)[labels]
    assert calibrate.expected_calibration_error(always_sure, labels) == 0.0


def test_before_is_recovered_from_after_and_the_digit_never_changes() -> None:
    logits, labels = _answers(1.0, n=500)
    after = calibrate.softmax(logits / 0.4)
    before = calibrate.uncalibrated(after, 0.4)
    assert np.allclose(before, calibrate.softmax(logits), atol=1e-9)
    assert (before.argmax(1) == after.argmax(1)).all()
    table = calibrate.reliability(after, labels)
    assert table.counts.sum() == 500 and len(table.counts) == calibrate.BINS


def test_the_held_out_slice_is_a_share_of_the_training_digits() -> None:
    assert calibrate.held_out_count(60_000, 0.05) == 3_000
    assert calibrate.held_out_count(300, 0.05) == calibrate.FEWEST_HELD_OUT
    assert calibrate.held_out_count(60, 0.05) == 30  # never more than half
    assert calibrate.held_out_count(60_000, 0.0) == 0
