"""The container engine the deploy tests share: podman in a store of its own, the stand-in base
images and the project's images built (tests/helpers/containers.py); what the tests make is
removed by name before and after, and nothing else."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator

import pytest

from tests.helpers.containers import ROOT, Bystanders, Engine

# docker-compose keeps only letters and digits of a project name: the volume is <PROJECT>_models.
PROJECT = "mniststack"

# What the Kubernetes part plays, by name: removed exactly, with compose's own objects.
K8S_PODS = ("gateway-pod-0", "tfserving-pod-0")
K8S_VOLUMES = ("mnist-models", "tfserving-config")
K8S_NETWORK = "mnist-k8s"


@pytest.fixture(scope="module")
def bystanders(tmp_path_factory) -> Iterator[Bystanders]:
    """A pod, a volume and a container (and the image it is made from) in the machine's own
    podman storage, as a developer's would be, made before the engine starts."""
    made = Bystanders.make(tmp_path_factory.mktemp("bystanders"))
    yield made
    made.remove()


@pytest.fixture(scope="module")
def engine(tmp_path_factory, bystanders: Bystanders) -> Iterator[Engine]:
    work = tmp_path_factory.mktemp("containers")
    engine = Engine.start(work, PROJECT)
    try:
        remove_what_the_tests_make(engine)  # a run that was killed may have left some
        engine.standins()
        engine.build_project_images()
        yield engine
    finally:
        remove_what_the_tests_make(engine)
        engine.stop()


def remove_what_the_tests_make(engine: Engine) -> None:
    """Compose's project (containers, its network and volumes) and what the Kubernetes part
    played, each by its name; nothing else, and only in the engine's own store."""
    steps = [lambda: engine.compose("--profile", "loadtest", "down", "-v", "--remove-orphans")]
    steps += [lambda pod=pod: engine.podman("pod", "rm", "-f", pod) for pod in K8S_PODS]
    steps += [lambda v=v: engine.podman("volume", "rm", "-f", v) for v in K8S_VOLUMES]
    steps.append(lambda: engine.podman("network", "rm", "-f", K8S_NETWORK))
    for step in steps:
        with contextlib.suppress(AssertionError):  # already gone
            step()


def rendered_manifests() -> str:
    """The Kubernetes manifests as ``kubectl kustomize deploy/k8s`` renders them."""
    return subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "deploy" / "k8s")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
