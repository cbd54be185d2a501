"""The drift window: the newest images of the last minutes, every worker's."""

from __future__ import annotations

import numpy as np

from mnist_contract.drift import raw_moments
from mnist_serving.observability.input_window import COLUMNS, InputWindow, inputs_path


def _batch(n: int, digit: int) -> tuple[np.ndarray, np.ndarray]:
    images = np.random.default_rng(digit).random((n, 28, 28, 1), dtype=np.float32)
    probs = np.full((n, 10), 0.02, np.float32)
    probs[:, digit] = 0.82
    return images, probs


def test_the_newest_images_are_kept_and_read() -> None:
    window = InputWindow(capacity=100)
    for digit in range(5):
        window.observe(*_batch(30, digit))  # 150 images into a ring of 100
    rows = window.latest(60, max_age_s=60)
    assert len(rows) == 60 and set(rows.digit) == {3, 4}  # the last two batches
    assert np.allclose(rows.confidence, 0.82)
    images, _ = _batch(30, 4)
    assert np.allclose(
        np.sort(rows.raw[rows.digit == 4], axis=0), np.sort(raw_moments(images), axis=0)
    )
    assert len(window.latest(1000, max_age_s=60)) == 100


def test_old_images_leave_the_window() -> None:
    window = InputWindow(capacity=100)
    window.observe(*_batch(10, 1))
    assert len(window.latest(100, max_age_s=60)) == 10
    assert len(window.latest(100, max_age_s=1e-9)) == 0


def test_every_workers_images_are_read_from_the_shared_folder(tmp_path) -> None:
    window = InputWindow(capacity=50, shared_dir=tmp_path)
    window.observe(*_batch(20, 7))
    other = InputWindow(capacity=50)
    other.observe(*_batch(30, 2))
    # Another worker's ring, as it writes it into the folder.
    np.asarray(other._ring).tofile(inputs_path(tmp_path, 999_999))
    (tmp_path / "inputs_half.inputs").write_bytes(b"\0" * (COLUMNS * 8 + 3))  # being created
    rows = window.latest(1000, max_age_s=60)
    assert sorted(np.bincount(rows.digit, minlength=10)[[2, 7]]) == [20, 30]


async def test_on_an_event_loop_calls_are_written_together_within_the_flush_interval() -> None:
    import asyncio

    from mnist_serving.observability.input_window import FLUSH_IMAGES, FLUSH_S

    window = InputWindow(capacity=4096)
    for digit in range(3):
        window.observe(*_batch(1, digit))
    assert not np.asarray(window._ring)[:, 0].any()  # kept, not yet written
    await asyncio.sleep(FLUSH_S * 3)
    assert np.count_nonzero(np.asarray(window._ring)[:, 0]) == 3  # the timer wrote them
    window.observe(*_batch(2, 5))
    assert len(window.latest(100, max_age_s=60)) == 5  # a reader gets this worker's last call
    window.observe(*_batch(FLUSH_IMAGES, 6))  # enough waiting: written at once
    assert np.count_nonzero(np.asarray(window._ring)[:, 0]) == 5 + FLUSH_IMAGES
