"""The drift monitor on a window it is fed: no alarm on what the reference looked like, an
alarm on what it did not, and a plain reason when it cannot score."""

from __future__ import annotations

import numpy as np

from mnist_contract.drift import DriftReference
from mnist_serving.core.drift import DriftLimits, DriftMonitor
from mnist_serving.observability.input_window import InputWindow

LIMITS = DriftLimits(window_images=500, max_age_s=60, threshold=0.5, min_images=100)


def _answers(labels: np.ndarray) -> np.ndarray:
    probs = np.full((len(labels), 10), 0.005, np.float32)
    probs[np.arange(len(labels)), labels] = 0.955
    return probs


def _monitor(digits, reference: DriftReference | None = None, reason: str = "") -> DriftMonitor:
    window = InputWindow(capacity=1000)
    return DriftMonitor(window, lambda: (1, reference, reason), LIMITS)


def test_digits_like_the_references_raise_no_alarm_and_inverted_ones_do(digits) -> None:
    """The reference is read on other test digits of the same writers: MNIST's writer
    populations differ in slant and stroke (docs/drift.md), which is not this test's point."""
    alike = digits["x_test"][500:].astype(np.float32) / 255.0
    reference = DriftReference.of(alike, _answers(digits["y_test"][500:]), digits["y_test"][500:])
    monitor = _monitor(digits, reference)
    test, labels = digits["x_test"][:500].astype(np.float32) / 255.0, digits["y_test"][:500]
    assert monitor.window is not None
    monitor.window.observe(test[:50], _answers(labels[:50]))
    few = monitor.report()
    assert few["alarm"] is False and few["overall"] is None and "scores need 100" in few["reason"]
    monitor.window.observe(test[50:], _answers(labels[50:]))
    clean = monitor.report()
    assert clean["alarm"] is False and clean["overall"] < 0.1, clean
    assert clean["window"]["images"] == 500 and clean["estimated_accuracy"] == 0.955
    assert set(clean["features"]) == set(reference.bins)
    monitor.window.observe(1.0 - test, _answers(labels))
    shifted = monitor.report()
    assert shifted["alarm"] is True and shifted["overall"] > 1.0
    assert shifted["overall"] == max(shifted["features"].values())
    assert shifted["features"]["border"] > 1.0 and shifted["features"]["ink"] > 1.0


def test_without_a_reference_it_says_why_instead_of_guessing(digits) -> None:
    monitor = _monitor(digits, None, "version 1 has no drift_reference.json")
    assert monitor.window is not None
    monitor.window.observe(np.zeros((300, 784), np.float32), _answers(np.zeros(300, int)))
    report = monitor.report()
    assert report["alarm"] is False and report["overall"] is None and report["features"] == {}
    assert report["reason"] == "version 1 has no drift_reference.json"
    assert report["window"]["images"] == 300 and report["estimated_accuracy"] == 0.955


def test_drift_off_reports_so() -> None:
    report = DriftMonitor(None, lambda: (1, None, ""), LIMITS).report()
    assert report["alarm"] is False and "drift is off" in report["reason"]


def test_a_version_folder_given_its_reference_later_is_read_again(tmp_path, digits) -> None:
    """The reference is read once per load of a version: a folder repaired in place (the
    watcher loads it again) is read again, not answered from what its first load found."""
    from dataclasses import dataclass

    from mnist_contract.drift import REFERENCE_FILE
    from mnist_serving.core.drift import references_of
    from mnist_serving.errors import NotFound

    @dataclass
    class Served:
        path: object
        version: int
        loaded_at: float

    class Repository:
        def __init__(self) -> None:
            self.versions = [Served(tmp_path, 1, 1.0)]

        def resolve(self, _spec):
            raise NotFound("no stable label")

    repository = Repository()
    current = references_of(repository)  # type: ignore[arg-type]
    assert current()[1] is None and "has no drift_reference.json" in current()[2]
    images = digits["x_test"][:300].astype(np.float32) / 255.0
    labels = digits["y_test"][:300]
    (tmp_path / REFERENCE_FILE).write_text(
        DriftReference.of(images, _answers(labels), labels).dumps()
    )
    assert current()[1] is None  # the same load: its first answer stands
    repository.versions = [Served(tmp_path, 1, 2.0)]  # loaded again
    version, reference, _ = current()
    assert version == 1 and reference is not None and reference.images == 300
