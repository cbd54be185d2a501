"""The export's checks without a trained model: LiteRT parity and version numbers claimed under
contention."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from mnist_training import export, versions
from mnist_training.errors import ExportError


def test_parity_check_refuses_a_different_model() -> None:
    a = np.eye(10, dtype=np.float32)[[1, 2, 3]]
    b = np.eye(10, dtype=np.float32)[[1, 2, 4]]
    with pytest.raises(ExportError, match="1 different digits"):
        export.check_parity(a, b)
    with pytest.raises(ExportError, match="max"):
        export.check_parity(a, a + 1e-3)


def test_concurrent_publishers_never_share_a_number(tmp_path) -> None:
    base = tmp_path / "mnist"
    base.mkdir()
    (base / "3").mkdir()
    claimed: list[int] = []

    def publish_one() -> None:
        with versions.staging_dir(base) as staged:
            (staged / "saved_model.pb").write_bytes(b"x")
            claimed.append(int(versions.publish(staged, base, None).name))

    threads = [threading.Thread(target=publish_one) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == list(range(4, 16))
    assert not list(base.glob(".staging-*"))
