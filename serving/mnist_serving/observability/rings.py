"""A process's bounded ring of float64 rows, shared with the other workers of a gateway: in
memory for one process, or a memory-mapped file in the workers' shared folder that any of them
reads (``time.monotonic`` is the system-wide monotonic clock on Linux, so rows compare across
processes). Recent traffic and the drift window are both kept this way."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def ring_file(folder: Path, prefix: str, suffix: str, pid: int | None = None) -> Path:
    return folder / f"{prefix}_{os.getpid() if pid is None else pid}{suffix}"


def own_ring(rows: int, columns: int, shared: Path | None) -> np.ndarray:
    """This process's ring of zeros (a zero time marks an empty row), at ``shared`` when given."""
    if shared is None:
        return np.zeros((rows, columns))
    return np.memmap(shared, dtype=np.float64, mode="w+", shape=(rows, columns))


def every_ring(
    own: np.ndarray, own_file: Path | None, suffix: str, columns: int
) -> list[np.ndarray]:
    """This process's ring and, beside ``own_file``, every other worker's with ``suffix``."""
    rings = [np.asarray(own)]
    if own_file is None:
        return rings
    for path in own_file.parent.glob(f"*{suffix}"):
        if path == own_file:
            continue
        try:
            rings.append(np.fromfile(path, dtype=np.float64).reshape(-1, columns))
        except (OSError, ValueError):  # removed (its worker died) or still being created
            continue
    return rings
