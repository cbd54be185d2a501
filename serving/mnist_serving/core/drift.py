"""Input drift seen by the gateway itself: the last images served, against what the serving
version's training digits looked like (its drift reference, exported with it).

    monitor = DriftMonitor(window, references, DriftLimits(2048, 600.0, 0.5))
    report = monitor.report()      # alarm, overall and per-feature PSI, the window, accuracy

Scores are the population stability index per feature (:mod:`mnist_contract.drift` says which
features and why PSI); the overall score is the largest, and the alarm is that score past the
threshold once the window holds enough images to say so. The mean calibrated confidence over
the window estimates the accuracy there without labels (as NannyML's CBPE does). A version
without a reference (exported before drift references, or hosted by TF Serving, whose version
folders the gateway does not read) is reported as such: no scores, no alarm.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnist_contract.drift import REFERENCE_FILE, DriftReference, image_features
from mnist_serving.errors import ServingError
from mnist_serving.observability.input_window import InputWindow, Rows
from mnist_serving.repositories.repository import ModelRepository, VersionSpec

log = logging.getLogger(__name__)

# Below this many images a window of one writer population scored past the default threshold
# now and then; from it on none did (docs/drift.md).
MIN_IMAGES = 500
# The version whose reference applies (the one unpinned requests go to), and its reference;
# or None with the reason there is none.
References = Callable[[], tuple[int | None, DriftReference | None, str]]


@dataclass(frozen=True)
class DriftLimits:
    window_images: int  # the newest images a window reads (0: drift off)
    max_age_s: float  # ... of at most this age
    threshold: float  # overall PSI past which the alarm is raised
    min_images: int = MIN_IMAGES  # fewer (or fewer than the whole window): no score yet

    @property
    def scored_from(self) -> int:
        """Images a window needs before it is scored: ``min_images``, or a smaller window's all."""
        return min(self.min_images, self.window_images)


class DriftMonitor:
    """``window``: None when drift is off (``--drift-window-images 0``)."""

    def __init__(
        self, window: InputWindow | None, references: References, limits: DriftLimits
    ) -> None:
        self.window = window
        self._references = references
        self.limits = limits

    def report(self) -> dict[str, Any]:
        """What ``GET /v1/models/mnist/drift`` answers, and the gauges read."""
        limits = self.limits
        if self.window is None:
            version, reference, reason = None, None, "drift is off (--drift-window-images 0)"
            rows = Rows.empty()
        else:
            rows = self.window.latest(limits.window_images, limits.max_age_s)
            version, reference, reason = self._references()
        report: dict[str, Any] = {
            "alarm": False,
            "overall": None,
            "threshold": limits.threshold,
            "features": {},
            "estimated_accuracy": round(float(rows.confidence.mean()), 4) if len(rows) else None,
            "window": {
                "images": len(rows),
                "seconds": round(rows.age_s, 1),
                "max_images": limits.window_images,
                "max_seconds": limits.max_age_s,
                "min_images": limits.scored_from,
            },
            "reference": None,
            "version": version,
        }
        if reference is None:
            report["reason"] = reason
            return report
        report["reference"] = {
            "images": reference.images,
            "answers": reference.answers,
            "accuracy": round(reference.accuracy, 4),
            "mean_confidence": round(reference.mean_confidence, 4),
        }
        if len(rows) < limits.scored_from:
            report["reason"] = (
                f"the window holds {len(rows)} images; scores need {limits.scored_from}"
            )
            return report
        scores = reference.scores(image_features(rows.raw), rows.confidence, rows.digit)
        overall = max(scores.values())
        report.update(
            features={name: round(score, 4) for name, score in scores.items()},
            overall=round(overall, 4),
            alarm=bool(overall > limits.threshold),
        )
        return report


def references_of(repository: ModelRepository) -> References:
    """The reference of the version unpinned requests go to (``stable``, else the newest),
    read from its folder once; none for a version without a folder here (TF Serving's) or
    without the file (exported before drift references)."""
    # By folder and load time: a folder repaired in place is loaded again, and read again.
    read: dict[tuple[Path, float], DriftReference | str] = {}

    def current() -> tuple[int | None, DriftReference | None, str]:
        served = repository.versions
        if not served:
            return None, None, "no version is serving yet"
        try:
            chosen = repository.resolve(VersionSpec(label="stable"))
        except ServingError:
            chosen = max(served, key=lambda v: v.version)
        if chosen.path is None:
            reason = "the model is hosted by TF Serving: its version folders are not read here"
            return chosen.version, None, reason
        key = (chosen.path, chosen.loaded_at)
        if key not in read:
            read[key] = _read(chosen.path / REFERENCE_FILE, chosen.version)
        found = read[key]
        if isinstance(found, str):
            return chosen.version, None, found
        return chosen.version, found, ""

    return current


def _read(path: Path, version: int) -> DriftReference | str:
    """The reference in ``path``, or why there is none."""
    if not path.is_file():
        return f"version {version} has no {REFERENCE_FILE} (exported before drift references)"
    try:
        return DriftReference.from_json(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:
        log.warning("version %d: unusable %s: %s", version, REFERENCE_FILE, exc)
        return f"version {version}'s {REFERENCE_FILE} is unusable: {exc}"
