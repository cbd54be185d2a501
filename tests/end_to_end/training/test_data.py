"""The real MNIST file loads with its digest."""

from __future__ import annotations

from mnist_training.data import load_mnist


def test_npz_loads_with_its_digest(fixture_npz) -> None:
    data = load_mnist(fixture_npz)
    assert data.x_train.shape == (3000, 28, 28)
    assert data.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert len(data.sha256) == 64
