"""Input drift on a real gateway of two workers: clean test digits streamed through it raise no
alarm; each shift the field brings raises it within one window, on the JSON view, on the gauge
(whichever worker is scraped) and on the alert rule (promtool, on the scraped values)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from mnist_contract.drift import REFERENCE_FILE, DriftReference
from mnist_contract.layout import TFLITE_FILE
from mnist_serving.observability.input_window import FLUSH_S
from mnist_training.export import tflite_predict
from tests.helpers.compose_stack import tool
from tests.helpers.digit_shifts import SHIFTS
from tests.helpers.metrics import samples_of
from tests.helpers.processes import Server, start_gateway, stop_gateway

WINDOW = 400
ALERTS = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "alerts.yml"


@pytest.fixture(scope="module")
def models(model_dir: Path, digits, tmp_path_factory) -> Path:
    """The fixture model with a drift reference read on more digits than its training keeps
    out (150: too few for a test's margins): image features from 2,000 training digits, the
    model's answers on the 150 held out and on 200 test digits no test here streams."""
    root = tmp_path_factory.mktemp("drift-models")
    version = root / "mnist" / "1"
    shutil.copytree(model_dir / "mnist" / "1", version)
    unseen = np.concatenate([digits["x_train"][2850:], digits["x_test"][800:]])
    labels = np.concatenate([digits["y_train"][2850:], digits["y_test"][800:]])
    probs = tflite_predict(version / TFLITE_FILE, unseen[..., None].astype(np.float32) / 255.0)
    images = digits["x_train"][:2000].astype(np.float32) / 255.0
    reference = DriftReference.of(images, probs, labels)
    (version / REFERENCE_FILE).write_text(reference.dumps())
    return root


@pytest.fixture(scope="module")
def gateway(models: Path) -> Iterator[Server]:
    srv = start_gateway(
        models, "--drift-window-images", str(WINDOW), "--precision", "fp32", workers="2"
    )
    yield srv
    stop_gateway(srv)


def _stream(gateway: Server, images: np.ndarray) -> None:
    """Each image once, in requests of 50, through TF Serving's predict (straight to the
    model: the digits API would re-centre and re-polarise what it is sent)."""
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        for start in range(0, len(images), 50):
            body = {"instances": images[start : start + 50, :, :, None].round(4).tolist()}
            assert client.post("/v1/models/mnist:predict", json=body).status_code == 200


def _views(gateway: Server) -> tuple[dict, list[tuple[float, float]]]:
    """The JSON view, and the overall score and alarm gauges as several scrapes read them
    (new connections: either worker may answer), once every worker has written its last
    calls (each writes what came in over FLUSH_S at once)."""
    time.sleep(FLUSH_S * 4)
    report = httpx.get(gateway.url + "/v1/models/mnist/drift").json()
    gauges = []
    for _ in range(4):
        text = httpx.get(gateway.url + "/metrics", headers={"Connection": "close"}).text
        found = samples_of(text)
        score = found[("mnist_input_drift", (("feature", "overall"),))]
        gauges.append((score, found[("mnist_input_drift_alarm", ())]))
    return report, gauges


def test_clean_digits_raise_no_alarm_and_every_shift_raises_it(gateway: Server, digits, tmp_path):
    clean = digits["x_test"].astype(np.float32) / 255.0
    _stream(gateway, clean[:WINDOW])
    report, gauges = _views(gateway)
    assert report["window"]["images"] == WINDOW  # both workers' images, the newest WINDOW
    assert report["reference"]["images"] == 2000 and report["alarm"] is False, report
    assert report["reference"]["answers"] == 350
    threshold = report["threshold"]
    assert all(g == (report["overall"], 0.0) for g in gauges), (report, gauges)
    assert report["overall"] < threshold
    assert 0.9 < report["estimated_accuracy"] <= 1.0
    seen = {"clean": 0.0}
    rng = np.random.default_rng(7)
    for name, shift in SHIFTS.items():
        _stream(gateway, shift(clean[WINDOW : 2 * WINDOW], rng).astype(np.float32))
        report, gauges = _views(gateway)
        assert report["alarm"] is True and report["overall"] > threshold, (name, report)
        assert all(g == (report["overall"], 1.0) for g in gauges), (name, gauges)
        seen[name] = 1.0
        _stream(gateway, clean[:WINDOW])  # the window is clean again before the next shift
        assert _views(gateway)[0]["alarm"] is False, name
    _the_alert_rule_fires_for_the_shifts_only(seen, tmp_path)


def _the_alert_rule_fires_for_the_shifts_only(seen: dict[str, float], tmp_path: Path) -> None:
    """deploy/prometheus/alerts.yml's drift rule, run by promtool on the scraped alarm gauge
    (one series per set, held for half an hour)."""
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    rule = next(r for r in rules if r.get("alert") == "MnistInputDrift")
    series = [
        {"series": f'mnist_input_drift_alarm{{instance="{name}"}}', "values": f"{alarm}x30"}
        for name, alarm in seen.items()
    ]
    expected = [
        {
            "exp_labels": {"instance": name, **rule["labels"]},
            "exp_annotations": {
                key: text.replace("{{ $labels.instance }}", name)
                for key, text in rule["annotations"].items()
            },
        }
        for name in seen
        if name != "clean"
    ]
    test = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": "25m", "alertname": "MnistInputDrift", "exp_alerts": expected}
                ],
            }
        ],
    }
    path = tmp_path / "drift_test.yml"
    path.write_text(json.dumps(test))
    result = subprocess.run(
        [tool("promtool"), "test", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
