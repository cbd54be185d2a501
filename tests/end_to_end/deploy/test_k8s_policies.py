"""The Kubernetes manifests as a cluster's policy scanner wants them: checkov, run offline on
what ``kubectl kustomize deploy/k8s`` renders, fails nothing; the two checks the manifests skip
(image digests, pull policy) are skipped where they are, with the reason beside them.

And what keeps a cluster's pods healthy through the faults the compose stack is tested
against: every long-running container has both probes, and pods restart by themselves.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.end_to_end.deploy.conftest import rendered_manifests
from tests.helpers.external import checkov

pytestmark = pytest.mark.end_to_end
OFFLINE_JSON = ("--skip-download", "--output", "json")  # nothing fetched; the report as JSON
DECIDED_AGAINST = {"CKV_K8S_43", "CKV_K8S_15"}  # image digests, imagePullPolicy: Always


def _scan(manifests: Path) -> dict:
    result = subprocess.run(
        [str(checkov()), "-f", str(manifests), "--framework", "kubernetes", *OFFLINE_JSON],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.stdout.strip(), result.stderr[-2000:]
    report: dict = json.loads(result.stdout)
    return report


def test_checkov_finds_nothing_but_what_is_decided_against(tmp_path) -> None:
    manifests = tmp_path / "rendered.yaml"
    manifests.write_text(rendered_manifests())
    report = _scan(manifests)["results"]
    failed = [(c["check_id"], c["resource"]) for c in report["failed_checks"]]
    assert failed == [], failed
    skipped = report["skipped_checks"]
    assert {c["check_id"] for c in skipped} == DECIDED_AGAINST
    assert all(c["check_result"].get("suppress_comment", "").strip() for c in skipped)
    assert len(report["passed_checks"]) > 200


def test_the_scan_sees_a_manifest_that_breaks_the_rules(tmp_path) -> None:
    """The scanner really reads the file: a container running as root with every capability
    and the service account token mounted fails it."""
    docs = [d for d in yaml.safe_load_all(rendered_manifests()) if d]
    for doc in docs:
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "gateway":
            spec = doc["spec"]["template"]["spec"]
            del spec["securityContext"], spec["automountServiceAccountToken"]
            del spec["containers"][0]["securityContext"]
    manifests = tmp_path / "rendered.yaml"
    manifests.write_text(yaml.safe_dump_all(docs))
    failed = {c["check_id"] for c in _scan(manifests)["results"]["failed_checks"]}
    assert {"CKV_K8S_20", "CKV_K8S_28", "CKV_K8S_31", "CKV_K8S_38"} <= failed, failed


def test_every_long_running_pod_is_probed_spread_and_guarded() -> None:
    docs = [d for d in yaml.safe_load_all(rendered_manifests()) if d]
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    budgets = {d["metadata"]["name"] for d in docs if d["kind"] == "PodDisruptionBudget"}
    policies = {d["metadata"]["name"] for d in docs if d["kind"] == "NetworkPolicy"}
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        spec = deployment["spec"]["template"]["spec"]
        assert spec.get("restartPolicy", "Always") == "Always", name
        for container in spec["containers"]:
            assert {"livenessProbe", "readinessProbe"} <= set(container), name
        assert spec["topologySpreadConstraints"], name
        assert name in budgets and name in policies, name
    job = next(d for d in docs if d["kind"] == "Job")
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"  # one-shot, retried
    assert job["spec"]["backoffLimit"] >= 1
