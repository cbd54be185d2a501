"""Numbered version folders under ``<model_dir>/mnist/``, claimed atomically.

TF Serving (and our gateway) poll ``models/mnist/`` and load any all-digit sub-folder they
find, so a version must appear there complete or not at all. An export is written to a hidden
staging folder beside the target and :func:`publish` renames it into place: ``rename(2)`` is
atomic on one file system. An exclusive lock on ``.export.lock`` makes "pick the next number and
rename" one step, so two jobs exporting at once never take the same number.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mnist_contract.layout import model_base, version_dirs
from mnist_training.errors import ExportError

__all__ = ["check_version_free", "existing_versions", "model_base", "next_version", "publish"]
STAGING_PREFIX = ".staging-"


def existing_versions(base: Path) -> list[int]:
    """Versions present under ``base``, oldest first (only positive all-digit names count)."""
    return sorted(version_dirs(base))


def next_version(base: Path) -> int:
    versions = existing_versions(base)
    return versions[-1] + 1 if versions else 1


@contextlib.contextmanager
def staging_dir(base: Path) -> Iterator[Path]:
    """A hidden folder beside the versions, removed on the way out whatever happens.

    On success :func:`publish` has already moved it away, so the clean-up finds nothing.
    """
    base.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=base))
    # mkdtemp makes it owner-only; a TF Serving container running as another user must read it.
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _export_lock(base: Path) -> Iterator[None]:
    with (base / ".export.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def publish(staged: Path, base: Path, version: int | None) -> Path:
    """Rename ``staged`` to ``base/<version>`` (the next free number when ``None``)."""
    with _export_lock(base):
        number = version if version is not None else next_version(base)
        target = base / str(number)
        if target.exists():
            raise ExportError(f"{target} already exists; choose another --version or omit it")
        # fsync the staged files' directory entries before the rename makes them visible.
        _fsync_tree(staged)
        os.rename(staged, target)
        _fsync_dir(base)
    return target


def check_version_free(base: Path, version: int | None) -> None:
    """Fail before training, not after, when an explicit ``--version`` is already taken."""
    if version is None:
        return
    if version < 1:
        raise ExportError(f"--version must be a positive integer, got {version}")
    if (base / str(version)).exists():
        raise ExportError(f"{base / str(version)} already exists; choose another --version")


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
