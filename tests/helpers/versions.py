"""Model versions as the trainer publishes them, and waiting for a gateway to notice."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from mnist_contract.layout import MODEL_CARD_FILE, TFLITE_FILE, TFLITE_INT8_FILE

# The files a version's LiteRT runtime may serve: the float one, and the int8 one when it has it.
LITERT_FILES = (TFLITE_FILE, TFLITE_INT8_FILE)


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


def without_int8(version_dir: Path) -> None:
    """The version as the export leaves it when the int8 check fails: the float LiteRT file
    only, and a card that says why."""
    (version_dir / TFLITE_INT8_FILE).unlink(missing_ok=True)
    card_path = version_dir / MODEL_CARD_FILE
    card = json.loads(card_path.read_text())
    card["int8"].update(published=False, reason="removed by the tests: they serve float only")
    card_path.write_text(json.dumps(card, indent=2) + "\n")


def break_litert_files(version_dir: Path) -> list[str]:
    """Overwrite every LiteRT file the version has (whichever one the gateway would serve);
    the names broken."""
    broken = [name for name in LITERT_FILES if (version_dir / name).is_file()]
    for name in broken:
        (version_dir / name).write_bytes(b"this is not a flatbuffer")
    return broken


async def wait_for_async(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    """:func:`wait_for` inside an event loop: the loop keeps running meanwhile."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
