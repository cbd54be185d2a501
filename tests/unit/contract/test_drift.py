"""The drift features and score on images whose answers are known: a bar, moved, turned,
inverted; PSI's zero and growth; the reference's file, and a broken one refused."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from mnist_contract.drift import (
    FEATURES,
    IMAGE_FEATURES,
    Bins,
    DriftReference,
    image_features,
    raw_moments,
)


def _bar(dy: int = 0, dx: int = 0, width: int = 2) -> np.ndarray:
    """A vertical bar of ink centred in the frame, moved by (dy, dx)."""
    image = np.zeros((28, 28), np.float32)
    image[6 + dy : 22 + dy, 14 - width + dx : 14 + width + dx] = 1.0
    return image


def _features(*images: np.ndarray) -> dict[str, np.ndarray]:
    found = image_features(raw_moments(np.stack(images)))
    return {name: found[:, i] for i, name in enumerate(IMAGE_FEATURES)}


def test_each_feature_reads_what_it_says() -> None:
    bar = _bar()
    turned = ndimage.rotate(bar, 30, reshape=False, order=1)
    found = _features(bar, _bar(dy=4, dx=-3), 1.0 - bar, turned, _bar(width=4))
    assert found["offset"][0] == pytest.approx(0.0, abs=1e-5)  # centred on (13.5, 13.5)
    assert found["offset"][1] == pytest.approx(5.0, abs=1e-4)  # moved by (4, -3)
    assert found["slant"][0] == pytest.approx(0.0, abs=1e-6)
    assert abs(found["slant"][3]) == pytest.approx(30, abs=3)
    assert found["border"][0] == 0.0 and found["border"][2] == 1.0  # inverted: all paper is ink
    assert found["ink"][2] > 0.9 > 0.1 > found["ink"][0]
    assert found["ink"][4] == pytest.approx(2 * found["ink"][0])
    assert found["fill"][0] == 1.0  # a solid bar: every inked pixel is full ink
    blurred = ndimage.uniform_filter(bar, 3)
    assert _features(blurred)["fill"][0] < 0.8


def test_a_blank_image_has_features_not_nan() -> None:
    found = image_features(raw_moments(np.zeros((2, 784), np.float32)))
    assert np.isfinite(found).all()


def test_psi_is_zero_for_the_reference_itself_and_grows_with_the_shift() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(0, 1, 5000)
    counts = np.histogram(
        values, bins=[-np.inf, *np.quantile(values, np.linspace(0.1, 0.9, 9)), np.inf]
    )[0]
    shares = (counts + 0.5) / (counts + 0.5).sum()
    bins = Bins(tuple(np.quantile(values, np.linspace(0.1, 0.9, 9))), tuple(shares))
    assert bins.psi(values) == pytest.approx(0.0, abs=1e-3)
    scores = [bins.psi(rng.normal(shift, 1, 2000)) for shift in (0.0, 0.5, 1.0, 2.0)]
    assert scores == sorted(scores) and scores[0] < 0.02 and scores[-1] > 1.0


def _reference() -> DriftReference:
    rng = np.random.default_rng(2)
    images = np.stack(
        [_bar(int(rng.integers(-2, 3)), int(rng.integers(-2, 3))) for _ in range(300)]
    )
    labels = rng.integers(0, 10, 300)
    probs = np.full((300, 10), 0.01, np.float32)
    probs[np.arange(300), labels] = 0.91
    return DriftReference.of(images, probs, labels)


def test_the_reference_reads_back_what_it_wrote() -> None:
    import json

    reference = _reference()
    again = DriftReference.from_json(json.loads(reference.dumps()))
    assert set(again.bins) == set(FEATURES) and again.images == 300
    assert again.accuracy == 1.0 and again.mean_confidence == pytest.approx(0.91)
    for name, bins in reference.bins.items():
        assert again.bins[name].edges == pytest.approx(bins.edges, abs=1e-6)
    assert len(reference.dumps()) < 10_000  # kilobytes, not the data


def test_a_broken_reference_is_refused_with_what_is_wrong() -> None:
    doc = _reference().to_json()
    del doc["features"]["slant"]
    with pytest.raises(ValueError, match="missing \\['slant'\\]"):
        DriftReference.from_json(doc)
    with pytest.raises(ValueError, match="not a drift reference"):
        DriftReference.from_json({"images": "many"})
