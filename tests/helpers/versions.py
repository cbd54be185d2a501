"""Model versions as the trainer publishes them, and waiting for a gateway to notice."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path


def publish(root: Path, version: int, source: Path) -> Path:
    """Copy a version folder in the way the trainer publishes: a hidden staging folder, then
    one rename, so the watcher never sees a half-copied version."""
    staging = root / "mnist" / f".staging-{version}"
    shutil.copytree(source, staging)
    final = root / "mnist" / str(version)
    staging.rename(final)
    return final


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
