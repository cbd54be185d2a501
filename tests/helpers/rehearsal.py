"""The compose stack rehearsed without containers: each service's own command and environment,
as ``docker-compose config`` resolves them, run as a local process.

What a container would give is supplied by hand, and only that: service names resolve to
127.0.0.1 with a free port for each (service, container port); a named volume is a folder;
a bind mount is the repository path it names; a path the Dockerfile copied is the repository
file it copied; the TF Serving image is stood in for by our gateway with ``backend=local``
on the ``tfserving`` service's ports (it speaks TF Serving's REST, gRPC and metrics path).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.helpers.compose_stack import ROOT, Dockerfile, mounts, service_dockerfile, tool
from tests.helpers.processes import free_port

BIN = Path(sys.executable).parent


@dataclass
class Stack:
    """The resolved compose config plus the local stand-ins for ports, volumes and paths."""

    config: dict[str, Any]
    work: Path
    ports: dict[tuple[str, int], int] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name, service in self.config["services"].items():
            for port in _container_ports(service, service_dockerfile(service)):
                self.ports[(name, port)] = free_port()

    def port(self, service: str, container_port: int) -> int:
        return self.ports[(service, container_port)]

    def map_value(self, service: str, value: str) -> str:
        """A value as the process on loopback needs it: other services' ``name:port`` become
        127.0.0.1 and their local port; this service's own container paths become local ones."""

        def local(match: re.Match[str]) -> str:
            name, port = match.group(1), int(match.group(2))
            return f"127.0.0.1:{self.port(name, port)}" if (name, port) in self.ports else match[0]

        names = "|".join(re.escape(n) for n in self.config["services"])
        value = re.sub(rf"\b({names}):(\d+)\b", local, value)
        for container_path, local_path in self.paths(service).items():
            value = re.sub(
                rf"(?<![\w/]){re.escape(container_path)}(?=/|$|\s|\")", local_path, value
            )
        return value

    def paths(self, service: str) -> dict[str, str]:
        """Container path → local path: volumes, then files the Dockerfile copied in."""
        found: dict[str, str] = {}
        spec = self.config["services"][service]
        for mount in mounts(spec):
            if mount.named_volume:
                folder = self.work / "volumes" / mount.source
                folder.mkdir(parents=True, exist_ok=True)
                found[mount.target] = str(folder)
            else:
                found[mount.target] = mount.source
        dockerfile = service_dockerfile(spec)
        if dockerfile is not None:
            for target, source in dockerfile.copies.items():
                absolute = target if target.startswith("/") else f"{dockerfile.workdir}/{target}"
                found.setdefault(absolute.rstrip("/"), str(ROOT / source))
        # Longest first, so /src/tests/load wins over /src.
        return dict(sorted(found.items(), key=lambda item: -len(item[0])))

    def environment(self, service: str, **overrides: str) -> dict[str, str]:
        """The image's ENV, then compose's environment, mapped; PATH reaches our programs."""
        spec = self.config["services"][service]
        dockerfile = service_dockerfile(spec)
        merged = {**(dockerfile.env if dockerfile else {}), **(spec.get("environment") or {})}
        mapped = {k: self.map_value(service, str(v)) for k, v in merged.items() if k != "PATH"}
        for key, value in list(mapped.items()):
            if key.endswith("_PORT") and value.isdigit() and (service, int(value)) in self.ports:
                mapped[key] = str(self.port(service, int(value)))
        base = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(self.work), "LANG": "C.UTF-8"}
        return {**base, **mapped, **overrides}

    def command(self, service: str) -> list[str]:
        """ENTRYPOINT + command, with copied scripts and container paths made local."""
        spec = self.config["services"][service]
        dockerfile = service_dockerfile(spec)
        entrypoint = spec.get("entrypoint") or (dockerfile.entrypoint if dockerfile else [])
        words = [*entrypoint, *(spec.get("command") or [])]
        if dockerfile is not None and words:
            copied = {Path(t).name: s for t, s in dockerfile.copies.items()}
            if words[0] in copied:
                words = ["sh", str(ROOT / copied[words[0]]), *words[1:]]
        return [self.map_value(service, w) for w in words]

    def start(self, service: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        # Appended, so a service started twice keeps both runs' lines; the child keeps its copy.
        with (self.work / f"{service}.log").open("ab") as log:
            process = subprocess.Popen(
                argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.work
            )
        self.processes.append(process)
        return process

    def log(self, service: str) -> str:
        return (self.work / f"{service}.log").read_text(errors="replace")[-4000:]

    def health(self, service: str, timeout: float = 90.0) -> None:
        """Run the service's own health check (compose's, else the Dockerfile's) until it passes."""
        spec = self.config["services"][service]
        test = spec.get("healthcheck", {}).get("test")
        dockerfile = service_dockerfile(spec)
        if test and test[0] == "CMD-SHELL":  # one string, for the shell
            argv = ["sh", "-c", test[1]]
        else:
            argv = test[1:] if test else (dockerfile.healthcheck if dockerfile else [])
        assert argv, f"{service} has no health check"
        if argv and argv[0] == "python":
            argv = [sys.executable, *argv[1:]]
        argv = [self._own_ports(service, w) for w in argv]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            probe = subprocess.run(argv, capture_output=True, timeout=10, check=False)
            if probe.returncode == 0:
                return
            time.sleep(0.5)
        raise AssertionError(f"{service} never became healthy:\n{self.log(service)}")

    def _own_ports(self, service: str, word: str) -> str:
        """Inside its container a service reaches itself at 127.0.0.1:<container port>."""
        for (name, port), local in self.ports.items():
            if name == service:
                word = re.sub(rf"127\.0\.0\.1([:/]){port}\b", rf"127.0.0.1\g<1>{local}", word)
        return word

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _container_ports(service: dict[str, Any], dockerfile: Dockerfile | None) -> set[int]:
    ports = {
        int(str(p["target"] if isinstance(p, dict) else p).split(":")[-1].split("/")[0])
        for p in service.get("ports", [])
    }
    ports.update(int(p) for p in service.get("expose", []))
    return ports


def standin_tfserving(stack: Stack) -> subprocess.Popen[bytes]:
    """Our gateway in TF Serving's place: same ports, the models volume, backend=local."""
    models = stack.paths("tfserving")["/models"]
    argv = [
        str(BIN / "mnist-serve"),
        "--backend",
        "local",
        "--model-dir",
        models,
        "--host",
        "127.0.0.1",
        "--rest-port",
        str(stack.port("tfserving", 8501)),
        "--grpc-port",
        str(stack.port("tfserving", 8500)),
        "--log-level",
        "warning",
    ]
    return stack.start("tfserving", argv, {**os.environ, "PATH": f"{BIN}:/usr/bin:/bin"})


def prometheus(stack: Stack) -> str:
    """Debian's Prometheus with the stack's config: its scrape targets and rule files mapped."""
    binary = tool("prometheus")
    argv = stack.command("prometheus")
    config_flag = next(a for a in argv if a.startswith("--config.file="))
    config = yaml.safe_load(Path(config_flag.split("=", 1)[1]).read_text())
    config["rule_files"] = [stack.map_value("prometheus", f) for f in config["rule_files"]]
    for job in config["scrape_configs"]:
        for group in job["static_configs"]:
            group["targets"] = [stack.map_value("prometheus", t) for t in group["targets"]]
    local = stack.work / "prometheus.yml"
    local.write_text(yaml.safe_dump(config))
    port = stack.port("prometheus", 9090)
    flags = [a for a in argv if not a.startswith("--config.file=")]
    stack.start(
        "prometheus",
        [
            binary,
            f"--config.file={local}",
            *flags,
            f"--storage.tsdb.path={stack.work / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        {"PATH": "/usr/bin:/bin"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/-/ready", timeout=1).status_code == 200:
                return url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(stack.log("prometheus"))


def query(url: str, expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(url + "/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", f"{expr}: {answer.get('error')}"
    return list(answer["data"]["result"])
