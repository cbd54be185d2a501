"""Load one version folder and prove it works before it may serve: load → check → warm up.

Runs in a worker thread (it takes ~100 ms for LiteRT, seconds for a SavedModel), so the event
loop keeps answering requests with the version already serving. Any failure is a
:class:`VersionRejected` naming the folder and the reason; the caller keeps the old version.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_serving.runtimes.runtime import Runtime, RuntimeOpener, Session
from mnist_serving.runtimes.warmup_records import WarmupError, warmup_batches

log = logging.getLogger(__name__)


class VersionRejected(Exception):
    """A version folder cannot serve (missing or corrupt files, wrong signature, bad answers)."""


@dataclass
class LoadedVersion:
    runtime: Runtime
    sessions: list[Session]
    warmup_requests: int


def load_version(
    path: Path, open_runtime: RuntimeOpener, sessions: int, warmup: bool
) -> LoadedVersion:
    """``path`` opened by ``open_runtime``, with ``sessions`` sessions, checked and warmed."""
    try:
        runtime = open_runtime(path)
        workers = [runtime.session() for _ in range(sessions)]
    except Exception as exc:  # any loader failure rejects the version
        raise VersionRejected(f"{path}: cannot load ({_reason(exc)})") from exc
    check_answers(path, workers[0])
    warmed = warm_up(path, workers[0]) if warmup else 0
    return LoadedVersion(runtime, workers, warmed)


def check_answers(path: Path, session: Session) -> None:
    """A test inference: [2,28,28,1] in, two rows of 10 finite probabilities summing to 1 out."""
    probe = np.zeros((2, 28, 28, 1), np.float32)
    probe[1, 8:20, 13:15, 0] = 1.0  # a stroke, so the two answers come from different inputs
    try:
        probs = np.asarray(session(probe))
    except Exception as exc:
        raise VersionRejected(f"{path}: test inference failed ({_reason(exc)})") from exc
    if probs.shape != (2, 10):
        raise VersionRejected(
            f"{path}: test inference answered shape {list(probs.shape)}, not [2, 10]"
        )
    if not np.isfinite(probs).all() or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3):
        raise VersionRejected(f"{path}: test inference answered values that are not probabilities")


def warm_up(path: Path, session: Session) -> int:
    """Replay the version's warm-up records; a version without them is warmed on zeros."""
    try:
        batches = warmup_batches(path)
    except (OSError, WarmupError) as exc:
        log.warning("no usable warm-up records in %s (%s); warming up on zeros", path, exc)
        session(np.zeros((1, 28, 28, 1), np.float32))
        return 0
    for signature, images in batches:
        shaped = images.astype(np.float32).reshape(-1, 28, 28, 1)
        probs = np.asarray(session(shaped))
        if probs.shape != (len(shaped), 10):
            raise VersionRejected(
                f"{path}: warm-up ({signature}) answered shape {list(probs.shape)}"
            )
    return len(batches)


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
