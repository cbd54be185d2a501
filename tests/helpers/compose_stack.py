"""Reading the deployment files as Docker and Kubernetes would: compose's resolved config,
Dockerfile instructions, and the settings every ``MNIST_*`` variable must be."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = ROOT / "docker-compose.yml"
MNIST_VARIABLE = re.compile(r"\bMNIST_[A-Z0-9_]+\b(?!<)")  # not MNIST_TRAIN_<OPTION> in prose


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed (python3 dev.py test installs it with apt-get)"
    return path


def compose_config(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """``docker-compose config`` as a fresh clone sees it: no .env, only ``environ`` set."""
    with tempfile.NamedTemporaryFile("w", suffix=".env") as empty:
        result = subprocess.run(
            [tool("docker-compose"), "--env-file", empty.name, "-f", str(COMPOSE), "config"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=ROOT,
            env={"PATH": "/usr/bin:/bin", **(environ or {})},
        )
    assert result.returncode == 0, result.stderr
    return dict(yaml.safe_load(result.stdout))


@dataclass
class Dockerfile:
    """The instructions of the final stage that matter to a rehearsal and to ownership checks."""

    path: Path
    user: str | None = None
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    copies: dict[str, str] = field(default_factory=dict)  # image path → repository path
    run_lines: list[str] = field(default_factory=list)
    bases: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> Dockerfile:
        text = re.sub(r"\\\n", " ", path.read_text())
        found = cls(path)
        for line in text.splitlines():
            words = line.strip().split(None, 1)
            if not words or words[0].startswith("#"):
                continue
            instruction, rest = words[0].upper(), (words[1] if len(words) > 1 else "")
            found._take(instruction, rest.strip())
        return found

    def _take(self, instruction: str, rest: str) -> None:
        if instruction == "FROM":
            self.bases.append(rest.split()[0])
            self.user, self.env, self.copies, self.run_lines = None, {}, {}, []  # a new stage
        elif instruction == "USER":
            self.user = rest
        elif instruction == "WORKDIR":
            self.workdir = rest
        elif instruction == "ENV":
            self.env.update(dict(pair.split("=", 1) for pair in shlex.split(rest)))
        elif instruction == "ENTRYPOINT":
            self.entrypoint = json.loads(rest)
        elif instruction == "HEALTHCHECK":
            self.healthcheck = shlex.split(rest.split("CMD", 1)[1])
        elif instruction == "COPY" and not rest.startswith("--from"):
            *sources, target = rest.split()
            for source in sources:
                into = target.endswith("/") or len(sources) > 1
                self.copies[f"{target.rstrip('/')}/{Path(source).name}" if into else target] = (
                    source
                )
        elif instruction == "RUN":
            self.run_lines.append(rest)

    def creates_owned(self, path: str) -> bool:
        """Whether a RUN line makes ``path`` owned by this image's USER."""
        user = re.escape(self.user or "root")
        target = re.escape(path.rstrip("/"))
        patterns = (
            rf"install -d[^&;]*-o {user}\b[^&;]*\s{target}(\s|$)",
            rf"chown (-R )?{user}(:\w+)? [^&;]*{target}(\s|$)",
        )
        return any(re.search(p, line) for line in self.run_lines for p in patterns)


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool

    @property
    def named_volume(self) -> bool:
        return not self.source.startswith(("/", "."))


def mounts(service: dict[str, Any]) -> list[Mount]:
    """A service's volumes, in either of the forms ``docker-compose config`` writes."""
    found = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            found.append(
                Mount(str(volume["source"]), volume["target"], bool(volume.get("read_only")))
            )
        else:
            source, target, *mode = volume.split(":")
            found.append(Mount(source, target, mode == ["ro"]))
    return found


def service_dockerfile(service: dict[str, Any]) -> Dockerfile | None:
    build = service.get("build")
    if not build:
        return None
    return Dockerfile.read(Path(build["context"]) / build.get("dockerfile", "Dockerfile"))


def known_variables() -> dict[str, str]:
    """Every ``MNIST_*`` variable some program of ours reads → which program."""
    from mnist_client.loadtest import ENVIRONMENT
    from mnist_serving.settings import Settings
    from mnist_training.cli import build_parser, env_names

    known = {f"MNIST_{name.upper()}": "gateway" for name in Settings.model_fields}
    known.update({name: "loadtest" for name in ENVIRONMENT})
    known.update({name: "trainer" for name in env_names(build_parser({})).values()})
    return known


def deployment_texts() -> dict[Path, str]:
    """The files that name variables: compose, its .env example, Dockerfiles, scripts, manifests."""
    paths = [COMPOSE, ROOT / ".env.example", *DEPLOY.rglob("Dockerfile"), *DEPLOY.rglob("*.sh")]
    paths += sorted((DEPLOY / "k8s").rglob("*.yaml"))
    return {p: p.read_text() for p in paths}


def kubernetes_documents() -> list[dict[str, Any]]:
    result = subprocess.run(
        [tool("kubectl"), "kustomize", str(DEPLOY / "k8s")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def containers(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each workload's first container, by workload name."""
    found = {}
    for doc in docs:
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        if spec.get("containers"):
            found[doc["metadata"]["name"]] = spec["containers"][0]
    return found
