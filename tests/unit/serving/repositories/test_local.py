"""The local repository on fake runtimes: policy, labels, canary, refusals, hot swaps."""

from __future__ import annotations

import shutil

import pytest

from mnist_serving.build import batcher_factory
from mnist_serving.errors import NotFound, StartupError
from mnist_serving.model_config import ModelConfig, VersionPolicy
from mnist_serving.observability.metrics import create_metrics
from mnist_serving.repositories.local import ConfigSource, LocalRepository
from mnist_serving.repositories.repository import AVAILABLE, END, VersionSpec
from mnist_serving.settings import Settings
from tests.helpers.fakes import FakeRuntime, loader, version_folders


def _repository(tmp_path, config: ModelConfig, load=None, ready=None) -> LocalRepository:
    metrics = create_metrics(process=False)
    settings = Settings(model_dir=tmp_path)
    return LocalRepository(
        tmp_path / "mnist",
        ConfigSource(config),
        load=load or loader(),
        make_batcher=batcher_factory(settings, metrics),
        metrics=metrics,
        poll_seconds=0,
        on_ready=ready,
    )


async def test_latest_two_load_and_the_newest_is_the_default(tmp_path) -> None:
    version_folders(tmp_path, 1, 2, 3)
    repo = _repository(tmp_path, ModelConfig(VersionPolicy(latest=2)))
    await repo.start()
    try:
        assert [v.version for v in repo.versions] == [2, 3]
        assert repo.resolve(VersionSpec()).version == 3
        assert repo.resolve(VersionSpec(version=2)).version == 2
        with pytest.raises(NotFound, match=r"Specific\(mnist, 1\)"):
            repo.resolve(VersionSpec(version=1))
    finally:
        await repo.close()


async def test_labels_point_and_unknown_labels_are_named(tmp_path) -> None:
    version_folders(tmp_path, 1, 2)
    config = ModelConfig(VersionPolicy(latest=None), {"stable": 1})
    repo = _repository(tmp_path, config)
    await repo.start()
    try:
        assert repo.resolve(VersionSpec()).version == 1  # stable wins over the newest
        assert repo.resolve(VersionSpec(label="stable")).version == 1
        with pytest.raises(NotFound, match="Unrecognized servable version label: beta"):
            repo.resolve(VersionSpec(label="beta"))
    finally:
        await repo.close()


async def test_the_canary_gets_exactly_its_share(tmp_path) -> None:
    version_folders(tmp_path, 1, 2)
    config = ModelConfig(VersionPolicy(latest=None), {"stable": 1, "canary": 2}, 0.25)
    repo = _repository(tmp_path, config)
    await repo.start()
    try:
        picks = [repo.resolve(VersionSpec()).version for _ in range(400)]
        assert picks.count(2) == 100
    finally:
        await repo.close()


async def test_a_version_that_cannot_load_is_refused_and_the_next_serves(tmp_path) -> None:
    version_folders(tmp_path, 1, 2)
    repo = _repository(tmp_path, ModelConfig(), load=loader(failing={2}))
    await repo.start()
    try:
        assert [v.version for v in repo.versions] == [1]
        states = {s.version: s for s in repo.statuses()}
        assert states[2].state == END and "fake refuses version 2" in states[2].error
        assert states[1].state == AVAILABLE
    finally:
        await repo.close()


async def test_a_new_folder_swaps_in_and_the_old_version_is_closed(tmp_path) -> None:
    version_folders(tmp_path, 1)
    made: list[FakeRuntime] = []
    seen: list[bool] = []
    repo = _repository(tmp_path, ModelConfig(), load=loader(made=made), ready=seen.append)
    await repo.start()
    try:
        version_folders(tmp_path, 2)
        await repo.sync()
        assert [v.version for v in repo.versions] == [2] and made[0].closed
        shutil.rmtree(tmp_path / "mnist" / "2")
        await repo.sync()  # a deleted newest version rolls back to the one before it
        assert [v.version for v in repo.versions] == [1]
        shutil.rmtree(tmp_path / "mnist" / "1")
        await repo.sync()  # the only version serving is kept, even with its folder gone
        assert [v.version for v in repo.versions] == [1]
    finally:
        await repo.close()
    assert seen[0] is True and seen[-1] is False


async def test_nothing_loadable_stops_the_start_with_the_reasons(tmp_path) -> None:
    version_folders(tmp_path, 1)
    repo = _repository(tmp_path, ModelConfig(), load=loader(failing={1}))
    with pytest.raises(StartupError, match=r"could be loaded: .*fake refuses version 1"):
        await repo.start()
