"""The compose stack in real containers, with podman: the engine, its Docker API for
docker-compose, the stand-in base images, the project's images, and health checks run the way
systemd runs them on a normal host.

The engine keeps everything in a store of its own (:class:`Store`: images, containers, pods,
volumes, networks under ``~/.cache/mnist-serving/podman``), never in the machine's default
podman storage, so a developer's own containers, pods, volumes, networks and images are never
seen, let alone removed. Images stay there between runs as a cache; everything else the tests
make is removed by name when they end.

    engine = Engine.start(work, project)     # podman system service on a socket of its own
    engine.standins()                        # bookworm base, python, prometheus (cached)
    engine.build_project_images()            # deploy/*/Dockerfile, unchanged
    with engine.health_checks():             # what systemd's timers would do
        engine.compose("up", "-d", "--no-build", "trainer", "tfserving", "gateway")

Everything it needs is named when it is missing (podman, runc, debootstrap, docker-compose,
root or a podman that runs without it); nothing is skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = ROOT / "deploy" / "podman" / "containers.conf"
STANDINS = ROOT / "deploy" / "standins"
OVERRIDE = ROOT / "deploy" / "podman" / "standins.yml"
BASE = "localhost/mnist-standin-bookworm:base"
PYTHON = "docker.io/library/python:3.11.7-slim-bookworm"
PROMETHEUS = "docker.io/prom/prometheus:v2.53.2"
TFSERVING = "docker.io/tensorflow/serving:2.19.0"
# The project's images, under the names deploy/podman/standins.yml gives them.
PROJECT_IMAGES = {
    "localhost/mnist-gateway:stack": "deploy/gateway/Dockerfile",
    "localhost/mnist-trainer:stack": "deploy/trainer/Dockerfile",
    "localhost/mnist-locust:stack": "deploy/locust/Dockerfile",
}
TOOLS = {
    "podman": "podman",
    "runc": "runc",
    "debootstrap": "debootstrap",
    "docker-compose": "docker-compose",
}
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mnist-serving"


@dataclass(frozen=True)
class Store:
    """Podman's storage, run state, volumes and network definitions, all under ``root``:
    pointed at by ``CONTAINERS_CONF`` and ``CONTAINERS_STORAGE_CONF``, so that every podman
    command the tests run (and the Docker API that docker-compose talks to) works there."""

    root: Path

    def configure(self) -> dict[str, str]:
        """Write the two configuration files; the environment that selects them."""
        for folder in ("storage", "run", "tmp", "volumes", "networks"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        storage = self.root / "storage.conf"
        storage.write_text(
            "[storage]\n"
            'driver = "overlay"\n'
            f'graphroot = "{self.root / "storage"}"\n'
            f'runroot = "{self.root / "run"}"\n'
        )
        engine = self.root / "containers.conf"
        # The project's settings for a host without systemd, with this store's paths added.
        settings = CONTAINERS_CONF.read_text().replace(
            "[engine]\n",
            f'[engine]\ntmp_dir = "{self.root / "tmp"}"\nvolume_path = "{self.root / "volumes"}"\n',
        )
        settings = settings.replace(
            "[network]\n", f'[network]\nnetwork_config_dir = "{self.root / "networks"}"\n'
        )
        engine.write_text(settings)
        return {"CONTAINERS_CONF": str(engine), "CONTAINERS_STORAGE_CONF": str(storage)}


def missing_pieces() -> list[str]:
    """What this machine lacks to run containers, in words a user can act on."""
    missing = [
        f"{tool} (Debian package {package})"
        for tool, package in TOOLS.items()
        if shutil.which(tool) is None
    ]
    if os.geteuid() != 0 and shutil.which("newuidmap") is None:
        missing.append("root, or rootless podman's newuidmap (Debian package uidmap)")
    return missing


def _run(*cmd: str, env: dict[str, str] | None = None, timeout: float = 900, **kw) -> str:
    result = subprocess.run(
        list(cmd), capture_output=True, text=True, timeout=timeout, env=env, check=False, **kw
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd[:6])} failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


@dataclass
class Engine:
    work: Path
    project: str
    env: dict[str, str]
    service: subprocess.Popen[bytes]
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def start(cls, work: Path, project: str) -> Engine:
        missing = missing_pieces()
        assert not missing, "the container engine cannot run here; missing: " + ", ".join(missing)
        socket = work / "podman.sock"
        env = {
            **os.environ,
            **Store(CACHE / "podman").configure(),
            "DOCKER_HOST": f"unix://{socket}",
            "COMPOSE_PROJECT_NAME": project,
        }
        with (work / "podman-service.log").open("wb") as log:
            service = subprocess.Popen(
                ["podman", "system", "service", "--time=0", f"unix://{socket}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + 30
        while not socket.exists():
            assert service.poll() is None, (work / "podman-service.log").read_text()
            assert time.monotonic() < deadline, "podman's Docker API did not come up"
            time.sleep(0.1)
        return cls(work, project, env, service)

    def stop(self) -> None:
        self.service.terminate()
        self.service.wait(30)

    # -- podman and compose ---------------------------------------------------------------

    def podman(self, *args: str, timeout: float = 900) -> str:
        return _run("podman", *args, env=self.env, timeout=timeout)

    def compose(self, *args: str, timeout: float = 900, extra: dict[str, str] | None = None) -> str:
        files = ("-f", str(ROOT / "docker-compose.yml"), "-f", str(OVERRIDE))
        env = {**self.env, **(extra or {})}
        return _run(
            "docker-compose",
            "--project-directory",
            str(ROOT),
            *files,
            *args,
            env=env,
            timeout=timeout,
            cwd=ROOT,
        )

    def has(self, image: str) -> bool:
        probe = subprocess.run(
            ["podman", "image", "exists", image], env=self.env, check=False, capture_output=True
        )
        return probe.returncode == 0

    def containers(self, *, running: bool = False) -> list[dict]:
        """The project's containers, as podman lists them."""
        args = [
            "ps",
            "--format",
            "json",
            "--filter",
            f"label=com.docker.compose.project={self.project}",
        ]
        found: list[dict] = json.loads(self.podman(*args, *(() if running else ("-a",))) or "[]")
        return found

    def container(self, service: str) -> str:
        """The (one) container of ``service``: its name."""
        for entry in self.containers():
            if entry.get("Labels", {}).get("com.docker.compose.service") == service:
                return str(entry["Names"][0])
        raise AssertionError(f"no container for {service}: {self.containers()}")

    def logs(self, name: str) -> str:
        """A container's output, both streams (podman passes its stderr on as its own)."""
        result = subprocess.run(
            ["podman", "logs", name], capture_output=True, text=True, env=self.env, check=False
        )
        return result.stdout + result.stderr

    def inspect(self, name: str, template: str) -> str:
        return self.podman("inspect", name, "--format", template).strip()

    # -- images ---------------------------------------------------------------------------

    def standins(self) -> None:
        """The stand-in bases, made once per machine: a debootstrapped bookworm, Python as the
        official image lays it out, and Prometheus; later runs reuse them."""
        started = time.perf_counter()
        if not self.has(BASE):
            self._bookworm()
        if not self.has(PYTHON):
            context = self.work / "python-context"
            shutil.copytree(STANDINS / "python", context)
            certificates = context / "ca-certificates"
            certificates.mkdir(exist_ok=True)
            for ca in Path("/usr/local/share/ca-certificates").glob("*.crt"):
                shutil.copy(ca, certificates)  # a TLS-inspecting proxy's CA, where there is one
            self._build(PYTHON, context / "Containerfile", context)
        if not self.has(PROMETHEUS):
            self._build(
                PROMETHEUS, STANDINS / "prometheus" / "Containerfile", STANDINS / "prometheus"
            )
        self.timings["standins_s"] = time.perf_counter() - started
        try:
            self.podman("run", "--rm", "--network", "none", BASE, "true", timeout=120)
        except AssertionError as exc:
            raise AssertionError(f"the container engine cannot start a container: {exc}") from None

    def _bookworm(self) -> None:
        tarball = CACHE / "bookworm-minbase.tar"
        if not tarball.exists():
            CACHE.mkdir(parents=True, exist_ok=True)
            root = self.work / "bookworm"
            _run("debootstrap", "--variant=minbase", "bookworm", str(root), _debian_mirror())
            _run("tar", "-C", str(root), "-cf", str(tarball), ".")
            shutil.rmtree(root, ignore_errors=True)
        self.podman("import", str(tarball), BASE)

    def _build(self, tag: str, containerfile: Path, context: Path, *args: str) -> None:
        self.podman(
            "build",
            "--format",
            "docker",
            "--network",
            "host",
            "--pull=never",
            "-t",
            tag,
            "-f",
            str(containerfile),
            *args,
            str(context),
        )

    def build_project_images(self) -> None:
        """The project's images from their Dockerfiles, unchanged; then the TF Serving
        stand-in on top of the gateway's."""
        for tag, dockerfile in PROJECT_IMAGES.items():
            started = time.perf_counter()
            self._build(tag, ROOT / dockerfile, ROOT)
            self.timings[f"build_{tag.split('/')[1].split(':')[0]}_s"] = (
                time.perf_counter() - started
            )
        self._build(
            TFSERVING,
            STANDINS / "tfserving" / "Containerfile",
            STANDINS / "tfserving",
            "--build-arg",
            "GATEWAY_IMAGE=localhost/mnist-gateway:stack",
        )

    def size_mb(self, image: str) -> float:
        return int(self.podman("image", "inspect", image, "--format", "{{.Size}}")) / 1e6

    # -- health checks --------------------------------------------------------------------

    @contextlib.contextmanager
    def health_checks(self, every: float = 2.0) -> Iterator[None]:
        """Run every running container's health check every ``every`` seconds meanwhile:
        podman leaves the schedule to systemd timers, and there may be no systemd."""
        stop = threading.Event()

        def tick() -> None:
            while not stop.wait(every):
                for entry in self.containers(running=True):
                    subprocess.run(
                        ["podman", "healthcheck", "run", entry["Id"]],
                        env=self.env,
                        capture_output=True,
                        check=False,
                        timeout=30,
                    )

        thread = threading.Thread(target=tick, name="health-checks", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(60)

    def health(self, service: str) -> str:
        return self.inspect(self.container(service), "{{.State.Health.Status}}")


def _debian_mirror() -> str:
    """The mirror apt already uses here (a local one in a closed network), else Debian's."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    return "http://deb.debian.org/debian"


@dataclass(frozen=True)
class Bystanders:
    """Objects of the machine's own podman storage (its default configuration, as a developer's
    workstation has it) that no test may touch: an image, a container made from it, a pod and
    a volume, with names no other run shares. Made and removed by the test that checks them."""

    image: str
    container: str
    pod: str
    volume: str

    @classmethod
    def make(cls, work: Path) -> Bystanders:
        tag = f"mnist-bystander-{os.getpid()}-{int(time.time())}"
        made = cls(f"localhost/{tag}:1", f"{tag}-container", f"{tag}-pod", f"{tag}-volume")
        (work / "rootfs").mkdir()
        (work / "rootfs" / "hello").write_text("a developer's own container\n")
        _run("tar", "-C", str(work / "rootfs"), "-cf", str(work / "rootfs.tar"), ".")
        _run("podman", "import", str(work / "rootfs.tar"), made.image)
        _run("podman", "create", "--name", made.container, "--network", "none", made.image, "/x")
        _run("podman", "pod", "create", "--infra=false", "--name", made.pod)
        _run("podman", "volume", "create", made.volume)
        return made

    def listing(self) -> dict[str, list[str]]:
        """What the machine's own storage holds now, by kind."""
        return {
            "containers": _run("podman", "ps", "-a", "--format", "{{.Names}}").split(),
            "pods": _run("podman", "pod", "ls", "--format", "{{.Name}}").split(),
            "volumes": _run("podman", "volume", "ls", "--format", "{{.Name}}").split(),
            "images": _run("podman", "images", "--format", "{{.Repository}}:{{.Tag}}").split(),
        }

    def all_there(self) -> bool:
        now = self.listing()
        return (
            self.container in now["containers"]
            and self.pod in now["pods"]
            and self.volume in now["volumes"]
            and self.image in now["images"]
        )

    def remove(self) -> None:
        """Exactly these four, by name."""
        for cmd in (
            ("rm", "-f", self.container),
            ("pod", "rm", "-f", self.pod),
            ("volume", "rm", "-f", self.volume),
            ("rmi", "-f", self.image),
        ):
            subprocess.run(["podman", *cmd], capture_output=True, check=False, timeout=60)
