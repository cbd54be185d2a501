"""The full stack in real containers: docker-compose.yml as it is, on podman, with stand-ins only
where no registry can be reached (deploy/podman/standins.yml), every check through the ports it
publishes on 127.0.0.1; then the Kubernetes manifests' TF Serving and gateway Deployments under
``podman kube play``.

What a container engine gives is used as it is: the images are built from deploy/*/Dockerfile
unchanged, compose waits on the health checks and on the trainer's exit, the models volume
keeps the model across ``down``/``up``. Only what cannot be real here is stood in for (see
deploy/README.md): Docker Hub's base images, TF Serving's binary, Grafana (left out).
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import yaml

from mnist_contract.protos import tensorflow_serving_pb2 as tfs
from mnist_contract.protos import tensorflow_serving_pb2_grpc as tfs_grpc
from mnist_contract.tensors import array_to_tensor, tensor_to_array
from tests.end_to_end.deploy.conftest import (
    K8S_NETWORK,
    K8S_PODS,
    K8S_VOLUMES,
    PROJECT,
    remove_what_the_tests_make,
    rendered_manifests,
)
from tests.helpers.containers import ROOT, TFSERVING, Bystanders, Engine
from tests.helpers.processes import free_port
from tests.helpers.versions import wait_for

pytestmark = pytest.mark.end_to_end
SERVICES = ("trainer", "tfserving", "gateway", "prometheus")  # Grafana: no binary reachable
PORTS = (
    "GATEWAY_REST_PORT",
    "GATEWAY_GRPC_PORT",
    "TFSERVING_GRPC_PORT",
    "TFSERVING_REST_PORT",
    "PROMETHEUS_PORT",
    "GRAFANA_PORT",
)


@pytest.mark.timeout(600)  # images built on a fresh machine, the stack up twice, kube play
def test_the_stack_runs_in_containers(engine: Engine, figures) -> None:
    ports = {name: free_port() for name in PORTS}
    env = {
        **{name: str(port) for name, port in ports.items()},
        # The committed real digits, mounted by the override file; a short run of the seed's
        # recipe: the stack is under test here, not the model.
        "MNIST_TRAIN_DATA": "/data/mnist.npz",
        "MNIST_TRAIN_RECIPE": "seed",
        "MNIST_TRAIN_EPOCHS": "2",
        "LOCUST_RUN_TIME": "10s",
        "LOCUST_USERS": "8",
    }
    gateway = f"http://127.0.0.1:{ports['GATEWAY_REST_PORT']}"
    tfserving = f"http://127.0.0.1:{ports['TFSERVING_REST_PORT']}"
    with engine.health_checks():
        started = time.perf_counter()
        engine.compose("up", "-d", "--no-build", *SERVICES, extra=env)
        wait_for(lambda: _status(gateway + "/readyz") == 200, "the gateway", 180)
        figures.setdefault("containers", {})["up_to_ready_s"] = round(
            time.perf_counter() - started, 1
        )
        _trained_and_served(engine, tfserving)
        _gateway_answers_every_api(engine, gateway, ports["GATEWAY_GRPC_PORT"])
        _prometheus_watches_both(f"http://127.0.0.1:{ports['PROMETHEUS_PORT']}")
        _locust_runs_without_a_failure(engine, env)
        engine.compose("restart", "gateway", extra=env)
        wait_for(lambda: engine.health("gateway") == "healthy", "the restarted gateway", 120)
        assert _status(gateway + "/readyz") == 200
        _kubernetes_manifests_play(engine)
        engine.compose("down", extra=env)
        engine.compose("up", "-d", "--no-build", *SERVICES, extra=env)
        wait_for(lambda: _status(gateway + "/readyz") == 200, "the gateway, up again", 180)
        assert "already has version(s) 1 ; skipping" in engine.logs(engine.container("trainer"))
    engine.compose("--profile", "loadtest", "down", "-v", extra=env)
    _nothing_left(engine)
    figures["containers"].update(
        {
            "gateway_image_mb": round(engine.size_mb("localhost/mnist-gateway:stack")),
            "trainer_image_mb": round(engine.size_mb("localhost/mnist-trainer:stack")),
            "locust_image_mb": round(engine.size_mb("localhost/mnist-locust:stack")),
            **{k: round(v, 1) for k, v in engine.timings.items()},
        }
    )


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return 0


def _trained_and_served(engine: Engine, tfserving: str) -> None:
    """The trainer exported version 1 into the models volume and exited 0; TF Serving's
    stand-in serves it and is healthy."""
    trainer = engine.container("trainer")
    assert engine.inspect(trainer, "{{.State.ExitCode}}") == "0"
    assert "done: version 1 → /models/mnist/1" in engine.logs(trainer)
    status = httpx.get(tfserving + "/v1/models/mnist").json()
    assert status["model_version_status"][0]["version"] == "1"
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    assert engine.health("tfserving") == "healthy"
    assert engine.inspect(engine.container("tfserving"), "{{.ImageName}}") == TFSERVING


def _digits(count: int) -> tuple[np.ndarray, np.ndarray]:
    with np.load(ROOT / "tests" / "fixtures" / "mnist-small.npz") as data:
        return data["x_test"][:count], data["y_test"][:count]


def _gateway_answers_every_api(engine: Engine, gateway: str, grpc_port: int) -> None:
    """Its own image (no TensorFlow inside, not root), healthy, answering through TF Serving."""
    name = engine.container("gateway")
    wait_for(lambda: engine.health("gateway") == "healthy", "the gateway's health check", 60)
    assert engine.podman("exec", name, "id", "-u").strip() == "10001"
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('tensorflow') is None)"
    with pytest.raises(AssertionError, match=r"failed \(1\)"):
        engine.podman("exec", name, "python", "-c", probe)
    frames, labels = _digits(8)
    octet = {"Content-Type": "application/octet-stream"}
    digits = httpx.post(gateway + "/v1/digits:classify", content=frames.tobytes(), headers=octet)
    found = [p["digit"] for p in digits.json()["predictions"]]
    images = (frames.astype(np.float32) / 255).reshape(-1, 28, 28, 1)
    predict = httpx.post(gateway + "/v1/models/mnist:predict", json={"instances": images.tolist()})
    tensor = {
        "name": "images",
        "datatype": "UINT8",
        "shape": [8, 784],
        "data": frames.ravel().tolist(),
    }
    infer = httpx.post(gateway + "/v2/models/mnist/infer", json={"inputs": [tensor]})
    request = tfs.PredictRequest(model_spec=tfs.ModelSpec(name="mnist"))
    request.inputs["images"].CopyFrom(array_to_tensor(images))
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        answer = tfs_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)
    answers = {
        "digits": found,
        "predict": np.argmax(predict.json()["predictions"], axis=1).tolist(),
        "v2": np.argmax(np.reshape(infer.json()["outputs"][0]["data"], (8, 10)), 1).tolist(),
        "grpc": tensor_to_array(answer.outputs["probabilities"]).argmax(1).tolist(),
    }
    assert all(a == found for a in answers.values()), answers
    assert (np.array(found) == labels).mean() >= 0.75  # two epochs on 2,850 digits
    metrics = httpx.get(gateway + "/metrics").text
    assert 'mnist_backend_target_up{target="tfserving:8500"} 1.0' in metrics
    assert re.search(
        r'mnist_requests_total\{code="OK",protocol="grpc",route="predict"\} [1-9]', metrics
    )


def _prometheus_watches_both(prometheus: str) -> None:
    def targets() -> dict[str, str]:
        found = httpx.get(prometheus + "/api/v1/targets").json()["data"]["activeTargets"]
        return {t["labels"]["job"]: t["health"] for t in found}

    wait_for(lambda: targets() == {"mnist-gateway": "up", "tfserving": "up"}, "both targets", 60)
    groups = httpx.get(prometheus + "/api/v1/rules").json()["data"]["groups"]
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    expected = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    assert {r["name"] for g in groups for r in g["rules"]} == expected


def _locust_runs_without_a_failure(engine: Engine, env: dict[str, str]) -> None:
    engine.compose("--profile", "loadtest", "up", "-d", "--no-build", "locust", extra=env)
    locust = engine.container("locust")
    code = engine.podman("wait", locust, timeout=180).strip()
    log = engine.logs(locust)
    assert code == "0", log[-3000:]  # Locust exits 1 when any request failed
    aggregated = [line for line in log.splitlines() if "Aggregated" in line]
    assert aggregated and re.search(r"Aggregated\s+\d+\s+0\(0\.00%\)", aggregated[0]), log[-3000:]


def _kubernetes_manifests_play(engine: Engine) -> None:
    """The TF Serving stand-in's and the gateway's Deployments, rendered by kustomize, played by
    podman with their own args, environment, volumes and security context. What kube play does
    not do is supplied by hand: a Service's name (the gateway's dns:/// target) resolves through
    a host alias to the TF Serving pod, each containerPort is published on 127.0.0.1."""
    docs = [d for d in yaml.safe_load_all(rendered_manifests()) if d]
    pick = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    engine.podman("network", "create", K8S_NETWORK)
    engine.podman("volume", "create", K8S_VOLUMES[0])
    engine.podman(
        "run",
        "--rm",
        "--user",
        "0",
        "--entrypoint",
        "sh",
        "-v",
        f"{PROJECT}_models:/from:ro",
        "-v",
        f"{K8S_VOLUMES[0]}:/to",
        "localhost/mnist-gateway:stack",
        "-c",
        "cp -a /from/. /to/",
    )
    tfs_ports = _play(
        engine, [pick[("ConfigMap", "tfserving-config")], pick[("Deployment", "tfserving")]]
    )
    ip = engine.inspect(
        _infra(engine, "tfserving"),
        f'{{{{(index .NetworkSettings.Networks "{K8S_NETWORK}").IPAddress}}}}',
    )
    gateway = pick[("Deployment", "gateway")]
    spec = gateway["spec"]["template"]["spec"]
    spec["containers"][0]["image"] = "localhost/mnist-gateway:stack"
    spec["hostAliases"] = [{"ip": ip, "hostnames": ["tfserving.mnist.svc.cluster.local"]}]
    gw_ports = _play(engine, [gateway])
    rest = f"http://127.0.0.1:{gw_ports[8080]}"
    wait_for(lambda: _status(rest + "/readyz") == 200, "the gateway pod", 120)
    assert _status(f"http://127.0.0.1:{tfs_ports[8501]}/v1/models/mnist") == 200
    assert _status(rest + "/healthz") == 200  # the routes its probes name
    container = "gateway-pod-0-gateway"
    manifest = gateway["spec"]["template"]["spec"]["containers"][0]
    env = engine.inspect(container, "{{json .Config.Env}}")
    for variable in manifest["env"]:
        assert f"{variable['name']}={variable['value']}" in json.loads(env)
    assert engine.inspect(container, "{{.Config.User}}") == "10001:10001"  # runAsUser, runAsGroup
    assert engine.inspect(container, "{{.HostConfig.ReadonlyRootfs}}") == "true"
    assert "/tmp" in engine.inspect(container, "{{range .Mounts}}{{.Destination}} {{end}}")
    frames, _ = _digits(8)
    octet = {"Content-Type": "application/octet-stream"}
    answer = httpx.post(rest + "/v1/digits:classify", content=frames.tobytes(), headers=octet)
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 8
    assert httpx.get(rest + "/readyz").json()["runtime"] == "tfserving"
    # The pod's restart policy (Always, a Deployment's) brings a crashed gateway back.
    os.kill(int(engine.inspect(container, "{{.State.Pid}}")), signal.SIGKILL)
    wait_for(lambda: engine.inspect(container, "{{.RestartCount}}") == "1", "a restart", 60)
    wait_for(lambda: _status(rest + "/readyz") == 200, "the restarted gateway pod", 120)
    for pod in K8S_PODS:
        engine.podman("pod", "rm", "-f", pod)


def _play(engine: Engine, docs: list[dict]) -> dict[int, int]:
    """Play ``docs`` (one replica, each container port published on 127.0.0.1); their ports."""
    published = {}
    for doc in docs:
        if doc["kind"] != "Deployment":
            continue
        doc["spec"]["replicas"] = 1
        for container in doc["spec"]["template"]["spec"]["containers"]:
            for port in container.get("ports", []):
                port["hostIP"], port["hostPort"] = "127.0.0.1", free_port()
                published[port["containerPort"]] = port["hostPort"]
    path = engine.work / f"play-{len(list(engine.work.glob('play-*')))}.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    engine.podman("kube", "play", "--network", K8S_NETWORK, str(path))
    return published


def _infra(engine: Engine, deployment: str) -> str:
    pod = f"{deployment}-pod-0"
    return engine.podman("pod", "inspect", pod, "--format", "{{.InfraContainerID}}").strip()


def _nothing_left(engine: Engine) -> None:
    assert engine.containers() == []
    networks = engine.podman("network", "ls", "--format", "{{.Name}}").split()
    volumes = engine.podman("volume", "ls", "--format", "{{.Name}}").split()
    assert not [n for n in networks if n.startswith(PROJECT)], networks
    assert not [v for v in volumes if v.startswith(PROJECT)], volumes


def test_the_machines_own_pods_volumes_and_containers_are_never_touched(
    engine: Engine, bystanders: Bystanders
) -> None:
    """The engine's store does not even see the machine's own objects, and removing what the
    tests made (again, as when they end) leaves every one of them as it was."""
    assert bystanders.container not in engine.podman("ps", "-a", "--format", "{{.Names}}")
    assert bystanders.pod not in engine.podman("pod", "ls", "--format", "{{.Name}}")
    assert bystanders.volume not in engine.podman("volume", "ls", "--format", "{{.Name}}")
    remove_what_the_tests_make(engine)
    assert bystanders.all_there(), bystanders.listing()


def test_the_engine_names_what_it_misses(monkeypatch) -> None:
    from tests.helpers import containers

    monkeypatch.setattr(containers.shutil, "which", lambda tool: None)
    assert "podman (Debian package podman)" in containers.missing_pieces()
    assert "docker-compose (Debian package docker-compose)" in containers.missing_pieces()


def test_the_override_stands_in_only_for_what_cannot_be_real() -> None:
    override = yaml.safe_load((ROOT / "deploy" / "podman" / "standins.yml").read_text())
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, service in override["services"].items():
        assert set(service) <= {"image", "pull_policy", "volumes"}, name
        assert name in compose["services"]
    assert "command" not in override["services"]["tfserving"]  # TF Serving's own flags stay
    assert Path(ROOT / "deploy" / "standins" / "tfserving" / "tfserving-standin").is_file()
