"""The deployment files, validated offline: compose, Prometheus rules and config, Grafana's
dashboard, Kubernetes manifests, and the Dockerfiles' install steps."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _run(*cmd: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(cmd), capture_output=True, text=True, timeout=120, check=False, cwd=ROOT, **kwargs
    )


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed (.ci/run installs it with apt-get)"
    return path


def test_compose_file_is_accepted_and_every_mounted_file_exists(tmp_path) -> None:
    env = tmp_path / ".env"
    env.write_text((ROOT / ".env.example").read_text())
    result = _run(
        _tool("docker-compose"), "--env-file", str(env), "-f", "docker-compose.yml", "config"
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert {"trainer", "tfserving", "gateway", "prometheus", "grafana"} <= set(config["services"])
    for name, service in config["services"].items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if str(source).startswith(("/", ".")):
                assert Path(source).exists(), f"{name} mounts {source}, which does not exist"
        build = service.get("build")
        if build:
            dockerfile = Path(build["context"]) / build.get("dockerfile", "Dockerfile")
            assert dockerfile.exists(), f"{name} builds from {dockerfile}, which does not exist"
    assert (
        config["services"]["gateway"]["depends_on"]["tfserving"]["condition"] == "service_healthy"
    )
    assert (
        config["services"]["tfserving"]["depends_on"]["trainer"]["condition"]
        == "service_completed_successfully"
    )
    health = " ".join(config["services"]["tfserving"]["healthcheck"]["test"])
    assert "curl" not in health and "/dev/tcp" in health and "AVAILABLE" in health


def test_compose_refuses_to_start_without_required_settings(tmp_path) -> None:
    empty = tmp_path / ".env"
    empty.write_text("")
    result = _run(
        _tool("docker-compose"), "--env-file", str(empty), "-f", "docker-compose.yml", "config"
    )
    assert result.returncode != 0 and "GRAFANA_ADMIN_PASSWORD" in result.stderr


def test_promtool_checks_config_rules_and_rule_tests(tmp_path) -> None:
    promtool = _tool("promtool")
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
    for metric in ("mnist_requests_total", "mnist_request_duration_seconds_bucket", "mnist_batch_size",
                   "mnist_batch_queue_images", "mnist_batch_queue_wait_seconds", "mnist_requests_in_flight",
                   "mnist_requests_refused_total", "mnist_predictions_total", "mnist_prediction_confidence",
                   "mnist_model_info", "process_cpu_seconds_total", "process_resident_memory_bytes",
                   ":tensorflow:serving:request_latency_bucket"):  # fmt: skip
        assert metric in exprs, metric
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "mnist.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    datasource = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    assert datasource["datasources"][0]["uid"] == "prometheus"


def _kustomize_build() -> list[dict]:
    result = _run(_tool("kubectl"), "kustomize", str(DEPLOY / "k8s"))
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def test_kubernetes_manifests_render_and_validate_offline() -> None:
    import kubernetes_validate

    docs = _kustomize_build()
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {("Deployment", "tfserving"), ("Deployment", "gateway"), ("Service", "tfserving"),
            ("HorizontalPodAutoscaler", "gateway"), ("ServiceMonitor", "mnist-gateway"),
            ("Job", "mnist-trainer")} <= kinds  # fmt: skip
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


def test_dockerfile_install_steps_work_and_keep_tensorflow_out_of_the_gateway(tmp_path) -> None:
    """The gateway image's install step (pip install ".[serve]") in a fresh venv, as the
    Dockerfile runs it: the entry point starts and TensorFlow is not installed."""
    dockerfile = (DEPLOY / "gateway" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:\d+\.\d+\.\d+-slim-\w+ AS build$", dockerfile, re.M), (
        "pin the base image"
    )
    assert "USER mnist" in dockerfile and '".[serve]"' in dockerfile
    import venv

    env = tmp_path / "gateway-image"
    venv.EnvBuilder(with_pip=True).create(env)
    install = _run(str(env / "bin" / "pip"), "install", "--quiet", f"{ROOT}[serve]")
    assert install.returncode == 0, install.stderr[-2000:]
    listed = _run(str(env / "bin" / "pip"), "list", "--format=freeze").stdout.lower()
    assert "tensorflow" not in listed and "ai-edge-litert" in listed
    help_text = _run(str(env / "bin" / "mnist-serve"), "--help")
    assert help_text.returncode == 0 and "--tfserving-targets" in help_text.stdout
    trainer = (DEPLOY / "trainer" / "Dockerfile").read_text()
    assert '".[train]"' in trainer and (DEPLOY / "trainer" / "train-if-needed.sh").exists()


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
