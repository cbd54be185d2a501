"""--sample-dir: sampled inputs written off the hot path, readable, counted, bounded; a slow or
failing disk drops and counts, and never fails or slows a request."""

from __future__ import annotations

import asyncio
import random
import time

import numpy as np

from mnist_serving.observability.samples import SampleWriter
from mnist_serving.settings import Settings
from tests.helpers.fakes import digit_image, loader, version_folders
from tests.helpers.gateways import in_process


def _shards(folder) -> list[dict]:
    found = []
    for path in sorted(folder.glob("samples-*.npz")):
        with np.load(path) as data:
            found.append({k: data[k] for k in data.files})
    return found


async def test_every_sampled_request_is_written_and_counted(tmp_path) -> None:
    folder = tmp_path / "samples"
    settings = Settings(model_dir=version_folders(tmp_path, 1), sample_dir=folder, sample_rate=1.0)
    async with in_process(settings, load=loader()) as api:
        octet = {"Content-Type": "application/octet-stream"}
        answers = await asyncio.gather(
            *(
                api.post(
                    "/v1/digits:classify",
                    content=digit_image(d % 10).tobytes(),
                    headers={**octet, "X-Request-ID": f"r{d}"},
                )
                for d in range(40)
            )
        )
        assert all(a.status_code == 200 for a in answers)
        written = 0.0
        for _ in range(50):  # the writer thread writes within a second
            text = (await api.get("/metrics")).text
            line = next(
                x for x in text.splitlines() if x.startswith("mnist_samples_written_total ")
            )
            written = float(line.split()[-1])
            if written == 40:
                break
            await asyncio.sleep(0.1)
    assert written == 40  # the metric counts what the files hold
    shards = _shards(folder)
    frames = np.concatenate([s["frames"] for s in shards])
    ids = np.concatenate([s["request_id"] for s in shards]).tolist()
    assert frames.shape == (40, 28, 28) and frames.dtype == np.uint8
    assert sorted(ids) == sorted(f"r{d}" for d in range(40))
    assert all(
        (s["labels"] == -1).all() and s["version"].tolist() == [1] * len(s["labels"])
        for s in shards
    )
    assert not list(folder.glob("*.tmp"))


def test_a_full_queue_drops_and_counts_without_blocking(tmp_path) -> None:
    dropped: dict[str, int] = {}
    writer = SampleWriter(
        tmp_path,
        rate=1.0,
        below=0.0,
        max_bytes=10**9,
        queue_size=8,
        on_drop=lambda reason, n: dropped.__setitem__(reason, dropped.get(reason, 0) + n),
    )
    probs = np.eye(10, dtype=np.float32)[[1] * 20]
    started = time.perf_counter()
    writer.offer(np.zeros((20, 28, 28), np.uint8), probs, 1, "x")  # not started: nothing drains
    assert time.perf_counter() - started < 0.05
    assert dropped == {"queue_full": 12}


def test_a_failing_disk_drops_and_counts(tmp_path) -> None:
    dropped: dict[str, int] = {}
    blocked = tmp_path / "not-a-folder"
    writer = SampleWriter(
        blocked,
        rate=1.0,
        below=0.0,
        max_bytes=10**9,
        shard_size=4,
        on_drop=lambda reason, n: dropped.__setitem__(reason, dropped.get(reason, 0) + n),
    )
    writer.start()
    blocked.rmdir()
    blocked.write_text("a file where the folder was")  # every write now fails
    writer.offer(np.zeros((4, 28, 28), np.uint8), np.eye(10, dtype=np.float32)[[2] * 4], 1, "y")
    writer.close()
    assert dropped == {"write_failed": 4}


def test_low_confidence_is_always_kept_and_the_folder_stays_bounded(tmp_path) -> None:
    written: list[int] = []
    writer = SampleWriter(
        tmp_path,
        rate=0.0,
        below=0.5,
        max_bytes=3000,
        shard_size=2,
        on_write=written.append,
        rng=random.Random(0),
    )
    writer.start()
    unsure = np.full((10, 10), 0.1, np.float32)  # confidence 0.1 < 0.5: kept
    sure = np.eye(10, dtype=np.float32)  # confidence 1.0, rate 0: not kept
    for _ in range(10):
        writer.offer(np.zeros((10, 28, 28), np.uint8), unsure, 1, "u")
        writer.offer(np.zeros((10, 28, 28), np.uint8), sure, 1, "s")
    writer.close()
    assert sum(written) == 100
    assert sum(p.stat().st_size for p in tmp_path.glob("samples-*.npz")) <= 3000
    assert all(set(s["request_id"].tolist()) == {"u"} for s in _shards(tmp_path))


def test_labelled_samples_become_training_data(tmp_path) -> None:
    import csv

    from mnist_training.data import load_mnist
    from mnist_training.samples import export, merge

    samples, out = tmp_path / "samples", tmp_path / "to-label"
    writer = SampleWriter(samples, rate=1.0, below=0.0, max_bytes=10**9, shard_size=5)
    writer.start()
    frames = np.stack([digit_image(d) for d in range(10)])
    writer.offer(frames, np.eye(10, dtype=np.float32), 1, "z")
    writer.close()
    assert export(samples, out) == 10 and len(list(out.glob("*.png"))) == 10
    with (out / "labels.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows[:8]:  # a person labels eight of them, the way the model answered
        row["label"] = row["predicted"]
    with (out / "labels.csv").open("w", newline="") as f:
        writer_csv = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer_csv.writeheader()
        writer_csv.writerows(rows)
    assert merge(out / "labels.csv", samples, tmp_path / "labelled.npz", 0.25, 0) == 8
    data = load_mnist(tmp_path / "labelled.npz")  # what mnist-train --data reads
    assert len(data.x_train) == 6 and len(data.x_test) == 2
    assert sorted([*data.y_train.tolist(), *data.y_test.tolist()]) == list(range(8))


async def test_requests_never_fail_when_the_disk_does(tmp_path) -> None:
    folder = tmp_path / "samples"
    settings = Settings(model_dir=version_folders(tmp_path, 1), sample_dir=folder, sample_rate=1.0)
    async with in_process(settings, load=loader()) as api:
        folder.rmdir()
        folder.write_text("the disk took the folder away")  # every shard write fails now
        octet = {"Content-Type": "application/octet-stream"}
        frames = b"".join(digit_image(d).tobytes() for d in range(10))
        for _ in range(30):  # 300 samples, more than one shard
            assert (
                await api.post("/v1/digits:classify", content=frames, headers=octet)
            ).status_code == 200
        dropped = 0.0
        for _ in range(50):
            text = (await api.get("/metrics")).text
            lines = [x for x in text.splitlines() if x.startswith("mnist_samples_dropped_total{")]
            dropped = sum(float(x.split()[-1]) for x in lines)
            if dropped >= 256:
                break
            await asyncio.sleep(0.1)
        assert dropped >= 256 and 'reason="write_failed"' in "".join(lines)


def test_an_unusable_sample_dir_stops_the_start_with_a_message(tmp_path) -> None:
    import pytest

    from mnist_serving.errors import StartupError

    taken = tmp_path / "file"
    taken.write_text("x")
    with pytest.raises(StartupError, match="--sample-dir"):
        SampleWriter(taken / "sub", rate=1.0, below=0.0, max_bytes=1).start()
