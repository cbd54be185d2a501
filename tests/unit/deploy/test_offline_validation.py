"""The deployment files, validated offline: compose, Prometheus rules and config, Grafana's
dashboard, Kubernetes manifests, and the Dockerfiles' install steps."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from tests.helpers.compose_stack import (
    DEPLOY,
    MNIST_VARIABLE,
    ROOT,
    Dockerfile,
    compose_config,
    containers,
    deployment_texts,
    known_variables,
    kubernetes_documents,
    mounts,
    service_dockerfile,
    tool,
)


def _run(*cmd: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(cmd), capture_output=True, text=True, timeout=120, check=False, cwd=ROOT, **kwargs
    )


def test_compose_runs_without_a_dot_env_and_every_mounted_file_exists() -> None:
    config = compose_config()
    assert {"trainer", "tfserving", "gateway", "prometheus", "grafana"} <= set(config["services"])
    for name, service in config["services"].items():
        for mount in mounts(service):
            if not mount.named_volume:
                assert Path(mount.source).exists(), f"{name} mounts {mount.source}: not there"
        build = service.get("build")
        if build:
            dockerfile = Path(build["context"]) / build.get("dockerfile", "Dockerfile")
            assert dockerfile.exists(), f"{name} builds from {dockerfile}, which does not exist"
    assert (
        config["services"]["tfserving"]["depends_on"]["trainer"]["condition"]
        == "service_completed_successfully"
    )
    health = " ".join(config["services"]["tfserving"]["healthcheck"]["test"])
    assert "curl" not in health and "/dev/tcp" in health and "AVAILABLE" in health


def test_every_service_waited_on_for_health_has_a_health_check() -> None:
    config = compose_config()
    services = config["services"]
    waited = {
        target
        for service in services.values()
        for target, rule in (service.get("depends_on") or {}).items()
        if rule.get("condition") == "service_healthy"
    }
    assert waited >= {"tfserving", "gateway"}
    for target in waited:
        dockerfile = service_dockerfile(services[target])
        in_compose = services[target].get("healthcheck", {}).get("test")
        assert in_compose or (dockerfile and dockerfile.healthcheck), (
            f"{target} is waited on as service_healthy but has no health check"
        )


def test_published_ports_bind_to_loopback_unless_a_bind_address_is_set() -> None:
    for environ, expected in (({}, "127.0.0.1"), ({"BIND_ADDRESS": "0.0.0.0"}, "0.0.0.0")):
        config = compose_config(environ)
        published = [
            (name, port)
            for name, service in config["services"].items()
            for port in service.get("ports", [])
        ]
        assert len(published) >= 6
        for name, port in published:
            host_ip = port["host_ip"] if isinstance(port, dict) else port.split(":")[0]
            assert host_ip == expected, f"{name} publishes {port} (expected {expected})"


def test_every_volume_a_non_root_service_writes_is_created_and_owned_in_its_image() -> None:
    config = compose_config()
    checked = 0
    for name, service in config["services"].items():
        writable = [m for m in mounts(service) if not m.read_only]
        dockerfile = service_dockerfile(service)
        if dockerfile is None:
            # Upstream images (TF Serving, Prometheus, Grafana) write only where their own
            # images made room; nothing of ours is mounted writable into them.
            assert writable == [], f"{name} mounts {writable} writable into an upstream image"
            continue
        assert dockerfile.user not in (None, "root", "0"), f"{name}'s image runs as root"
        for volume in writable:
            checked += 1
            assert dockerfile.creates_owned(volume.target), (
                f"{name} writes {volume.target} as {dockerfile.user}, but "
                f"{dockerfile.path.relative_to(ROOT)} does not create it owned by that user"
            )
    assert checked >= 1  # the trainer's models volume


def test_every_mnist_variable_in_the_deploy_files_is_a_real_setting() -> None:
    known = known_variables()
    for path, text in deployment_texts().items():
        for variable in set(MNIST_VARIABLE.findall(text)):
            assert variable in known, (
                f"{path.relative_to(ROOT)} names {variable}, which no gateway, trainer or "
                "load-test setting reads (a typo?)"
            )


def test_the_variable_check_catches_a_typo() -> None:
    """Guards the check above: a misspelt variable is not among the known ones."""
    known = known_variables()
    assert "MNIST_TFSERVING_TARGETS" in known and "MNIST_TRAIN_EPOCHS" in known
    assert "MNIST_TFSERVING_TARGET" not in known and "MNIST_TRAIN_EPOCH" not in known


def test_base_images_and_service_images_are_pinned() -> None:
    config = compose_config()
    for name, service in config["services"].items():
        if "image" in service:
            assert re.search(r":v?\d+\.\d+\.\d+$", service["image"]), (
                f"{name}: pin {service['image']}"
            )
    for path in DEPLOY.rglob("Dockerfile"):
        for base in Dockerfile.read(path).bases:
            assert re.search(r":\d+\.\d+\.\d+-", base), f"{path}: pin the base image {base}"


def test_grafana_never_has_a_known_admin_password(tmp_path) -> None:
    config = compose_config()
    grafana = config["services"]["grafana"]
    assert "GF_SECURITY_ADMIN_PASSWORD" not in grafana["environment"]
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    script = DEPLOY / "grafana" / "start.sh"
    assert grafana["entrypoint"][-1] == "/etc/grafana/start.sh"
    show = ["sh", "-c", 'printf %s "$GF_SECURITY_ADMIN_PASSWORD"']

    def password(**env: str) -> str:
        result = _run("sh", str(script), *show, env={"PATH": "/usr/bin:/bin", **env})
        assert result.returncode == 0, result.stderr
        return result.stdout

    first, second = password(), password()
    assert len(first) == 48 and first != second and first not in ("admin", "")
    chosen = {"GRAFANA_ADMIN_PASSWORD": "chosen-by-the-user"}
    assert password(**chosen) == chosen["GRAFANA_ADMIN_PASSWORD"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    sources = {m.target: m.source for m in mounts(grafana)}
    assert Path(sources[str(Path(home).parent)], Path(home).name).is_file()


def test_promtool_checks_config_rules_and_rule_tests(tmp_path) -> None:
    promtool = tool("promtool")
    # The compose config names the rules file by its in-container path; check a local copy.
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["rule_files"] = [str(DEPLOY / "prometheus" / "alerts.yml")]
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(config))
    for cmd in (
        ("check", "config", str(local)),
        ("check", "rules", str(DEPLOY / "prometheus" / "alerts.yml")),
    ):
        result = _run(promtool, *cmd)
        assert result.returncode == 0, result.stdout + result.stderr
    tests = _run(promtool, "test", "rules", str(DEPLOY / "prometheus" / "alerts_test.yml"))
    assert tests.returncode == 0 and "SUCCESS" in tests.stdout, tests.stdout + tests.stderr


def test_every_alert_rule_has_a_unit_test() -> None:
    rules = {
        r["alert"]
        for g in yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
        for r in g["rules"]
    }
    tested = {
        case["alertname"]
        for test in yaml.safe_load((DEPLOY / "prometheus" / "alerts_test.yml").read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert rules == tested


def test_grafana_dashboard_is_provisioned_and_covers_the_signals() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "mnist.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in (
        "mnist_requests_total",
        "mnist_request_duration_seconds_bucket",
        "mnist_batch_size",
        "mnist_batch_queue_images",
        "mnist_batch_queue_wait_seconds",
        "mnist_requests_in_flight",
        "mnist_requests_refused_total",
        "mnist_predictions_total",
        "mnist_prediction_confidence",
        "mnist_model_info",
        "mnist_input_drift",
        "mnist_estimated_accuracy",
        "mnist_version_request_duration_seconds_bucket",
        "mnist_version_requests_total",
        "mnist_version_prediction_confidence",
        "mnist_shadow_images_total",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        ":tensorflow:serving:request_latency_bucket",
    ):
        assert metric in exprs, metric
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "mnist.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    datasource = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    assert datasource["datasources"][0]["uid"] == "prometheus"


def test_kubernetes_manifests_render_and_validate_offline() -> None:
    import kubernetes_validate

    docs = kubernetes_documents()
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {
        ("Deployment", "tfserving"),
        ("Deployment", "gateway"),
        ("Service", "tfserving"),
        ("HorizontalPodAutoscaler", "gateway"),
        ("ServiceMonitor", "mnist-gateway"),
        ("Job", "mnist-trainer"),
    } <= kinds
    for doc in docs:
        if doc["kind"] == "ServiceMonitor":
            continue  # a CRD: no schema in the Kubernetes distribution, checked by shape below
        kubernetes_validate.validate(doc, "1.30.0", strict=True)
    monitor = next(d for d in docs if d["kind"] == "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    tfs = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "tfserving"
    )
    container = tfs["spec"]["template"]["spec"]["containers"][0]
    cpus = container["resources"]["limits"]["cpu"]
    assert f"--tensorflow_intra_op_parallelism={cpus}" in container["args"]
    assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
    assert "AVAILABLE" in " ".join(container["readinessProbe"]["exec"]["command"])
    service = next(
        d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "tfserving"
    )
    assert service["spec"]["clusterIP"] == "None"
    assert all(d["metadata"].get("namespace") in ("mnist", None) for d in docs)


def test_trainer_skips_when_a_version_exists(tmp_path) -> None:
    (tmp_path / "mnist" / "3").mkdir(parents=True)
    script = DEPLOY / "trainer" / "train-if-needed.sh"
    result = _run(
        "sh", str(script), env={"MNIST_MODEL_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    )
    assert result.returncode == 0 and "already has version(s) 3" in result.stdout


def test_tfserving_config_has_policy_labels_batching_and_monitoring() -> None:
    models = (DEPLOY / "tfserving" / "models.config").read_text()
    assert 'name: "mnist"' in models and "latest { num_versions: 2 }" in models
    assert 'version_labels { key: "stable"' in models and 'version_labels { key: "canary"' in models
    batching = (DEPLOY / "tfserving" / "batching.config").read_text()
    for key in (
        "max_batch_size",
        "batch_timeout_micros",
        "max_enqueued_batches",
        "num_batch_threads",
    ):
        assert key in batching
    assert (
        'path: "/monitoring/prometheus/metrics"'
        in (DEPLOY / "tfserving" / "monitoring.config").read_text()
    )
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "--allow_version_labels_for_unavailable_models=true" in compose
    assert re.search(r"tensorflow/serving:\d+\.\d+\.\d+", compose), "pin the TF Serving image"


def test_kubernetes_containers_parse_as_real_settings_and_probes_hit_real_routes(
    monkeypatch,
) -> None:
    from mnist_serving.adapters.rest.routes import ROUTES
    from mnist_serving.settings import Settings
    from mnist_training.cli import build_parser

    workloads = containers(kubernetes_documents())
    gateway = workloads["gateway"]
    environ = {e["name"]: e["value"] for e in gateway.get("env", [])}
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    settings = Settings()  # the manifest's environment, as the gateway reads it
    assert settings.backend == "tfserving"
    ports = {p["name"]: p["containerPort"] for p in gateway["ports"]}
    assert ports["http"] == settings.rest_port and ports["grpc"] == settings.grpc_port
    routes = {route.template for route in ROUTES}
    for probe in ("readinessProbe", "livenessProbe"):
        check = gateway[probe]["httpGet"]
        assert check["path"] in routes, f"gateway {probe} asks {check['path']}, not a route"
        assert ports.get(check["port"], check["port"]) == settings.rest_port

    trainer = workloads["mnist-trainer"]
    trainer_env = {e["name"]: e["value"] for e in trainer.get("env", [])}
    args = build_parser(trainer_env).parse_args(["train", *trainer.get("args", [])])
    assert str(args.model_dir) == trainer["volumeMounts"][0]["mountPath"]

    tfserving = workloads["tfserving"]
    tf_ports = {p["name"]: p["containerPort"] for p in tfserving["ports"]}
    assert f"--port={tf_ports['grpc']}" in tfserving["args"]
    assert f"--rest_api_port={tf_ports['http']}" in tfserving["args"]
    assert f"/dev/tcp/127.0.0.1/{tf_ports['http']}" in " ".join(
        tfserving["readinessProbe"]["exec"]["command"]
    )
    assert settings.tfserving_targets[0].endswith(f":{tf_ports['grpc']}")


def test_every_image_that_installs_the_project_copies_all_its_source_folders() -> None:
    """pip installs what the image was given: a source folder left out of a COPY is a package
    missing at run time (the build itself succeeds)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    folders = set(project["tool"]["setuptools"]["packages"]["find"]["where"])
    for path in sorted(DEPLOY.glob("*/Dockerfile")):
        text = path.read_text()
        if not re.search(r'pip install[^\n]*"\.\[', text):
            continue
        copied = set(re.findall(r"^COPY (\S+) \1$", text, re.M))
        assert folders <= copied, f"{path}: COPY {sorted(folders - copied)} too"
