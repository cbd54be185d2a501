"""The exported version folder: signatures, warm-up records, LiteRT parity, card, atomicity."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnist_serving.runtimes.warmup_records import warmup_batches
from mnist_training import calibrate, export, versions
from mnist_training.errors import ExportError
from mnist_training.train import TrainConfig, run


@pytest.fixture(scope="module")
def version_dir(model_dir: Path) -> Path:
    return model_dir / "mnist" / "1"


def _scaled(digits, n=200):
    return (digits["x_test"][:n].astype(np.float32) / 255.0)[..., None]


def test_layout_is_what_tf_serving_polls(version_dir: Path) -> None:
    names = {p.name for p in version_dir.iterdir()}
    assert {
        "saved_model.pb",
        "variables",
        "assets.extra",
        "model.tflite",
        "model_card.json",
    } <= names
    plots = {"training_curves.png", "confusion_matrix.png", "first_layer_filters.png"}
    assert plots | {"reliability.png"} <= names
    assert (version_dir / "assets.extra" / "tf_serving_warmup_requests").stat().st_size > 0
    assert version_dir.stat().st_mode & 0o755 == 0o755  # readable by a TF Serving container user
    assert not list(version_dir.parent.glob(".staging-*"))


def test_both_signatures_answer_with_the_fixed_names_shapes_and_dtypes(version_dir, digits) -> None:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(version_dir))
    assert set(loaded.signatures) == {"serving_default", "predict_images"}
    images = _scaled(digits, 16)
    default = loaded.signatures["serving_default"](images=tf.constant(images))
    flat = loaded.signatures["predict_images"](images=tf.constant(images.reshape(16, 784)))
    assert set(default) == {"probabilities"} and set(flat) == {"scores"}
    probs, scores = default["probabilities"].numpy(), flat["scores"].numpy()
    assert probs.shape == scores.shape == (16, 10)
    assert probs.dtype == scores.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probs, scores, atol=1e-6)
    spec = loaded.signatures["serving_default"].structured_input_signature[1]["images"]
    assert spec.shape.as_list() == [None, 28, 28, 1] and spec.dtype == tf.float32


def test_warmup_records_parse_and_replay_against_the_saved_model(version_dir) -> None:
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    loaded = tf.saved_model.load(str(version_dir))
    path = str(version_dir / "assets.extra" / "tf_serving_warmup_requests")
    records = [r.numpy() for r in tf.data.TFRecordDataset(path)]
    assert 1 < len(records) <= 1000
    signatures = set()
    for raw in records:
        request = prediction_log_pb2.PredictionLog.FromString(raw).predict_log.request
        assert request.model_spec.name == "mnist"
        signature = request.model_spec.signature_name
        signatures.add(signature)
        images = tf.make_ndarray(request.inputs["images"])
        out = loaded.signatures[signature](images=tf.constant(images))
        (probs,) = out.values()
        assert probs.shape == (len(images), 10)
    assert signatures == {"serving_default", "predict_images"}
    # The gateway's TensorFlow-free reader sees the same requests.
    ours = warmup_batches(version_dir)
    assert [len(images) for _sig, images in ours] == [
        tf.make_ndarray(
            prediction_log_pb2.PredictionLog.FromString(r).predict_log.request.inputs["images"]
        ).shape[0]
        for r in records
    ]


def test_litert_flatbuffer_matches_the_saved_model(version_dir, digits) -> None:
    images = _scaled(digits, 500)
    reference = export.saved_model_predict(version_dir, images)
    lite = export.tflite_predict(version_dir / "model.tflite", images)
    assert (reference.argmax(1) == lite.argmax(1)).all()
    assert np.abs(reference - lite).max() <= export.PARITY_TOLERANCE


def test_model_card_records_what_was_trained_and_how_well(version_dir) -> None:
    card = json.loads((version_dir / "model_card.json").read_text())
    assert card["version"] == 1
    assert card["parameters"] == 104_202
    assert card["recipe"]["name"] == "seed" and card["recipe"]["distortions"] is None
    assert card["hyperparameters"]["optimizer"] == "rmsprop"
    assert card["hyperparameters"]["batch_size"] == 64
    evaluations = card["evaluations"]
    assert evaluations["mnist_test"] == round(card["test"]["accuracy"], 6)
    # The fixture model (3,000 digits, 3 epochs) reads other writers and photos far above chance.
    assert evaluations["other_writers"] > 0.5 and evaluations["photos"] > 0.5
    assert evaluations["other_writers_images"] == 1797
    assert len(card["data"]["sha256"]) == 64
    assert card["test"]["accuracy"] > 0.9  # 1,000 held-out fixture digits
    confusion = np.array(card["test"]["confusion_matrix"])
    assert confusion.shape == (10, 10) and confusion.sum() == card["data"]["test_images"]
    assert set(card["test"]["per_class"]) == {str(d) for d in range(10)}
    assert card["litert_parity"]["argmax_mismatches"] == 0
    assert card["training_seconds"] > 0 and card["framework"]["tensorflow"]


def test_the_confidence_is_calibrated_on_held_out_training_digits(version_dir, digits) -> None:
    card = json.loads((version_dir / "model_card.json").read_text())
    calibration, data = card["calibration"], card["data"]
    # The last 5% of the 3,000 fixture training digits: held out of training, fitted on.
    assert data["held_out_images"] == 150 and data["train_images"] == 2_850
    assert calibration["fitted_on"] == "the last 150 training digits, held out of training"
    temperature = calibration["temperature"]
    probs = export.saved_model_predict(version_dir, _scaled(digits, 1000))
    labels = digits["y_test"][:1000]
    mnist = calibration["ece"]["mnist_test"]
    # The card's figures are the exported model's, and the temperature is folded into it.
    assert mnist["after"] == pytest.approx(
        calibrate.expected_calibration_error(probs, labels), abs=1e-4
    )
    before = calibrate.uncalibrated(probs, temperature)
    assert mnist["before"] == pytest.approx(
        calibrate.expected_calibration_error(before, labels), abs=1e-4
    )
    assert (before.argmax(1) == probs.argmax(1)).all()  # the digit is the model's, unchanged
    assert mnist["accuracy"] == card["evaluations"]["mnist_test"]
    assert set(calibration["ece"]) == {"mnist_test", "other_writers", "photos"}


def test_the_card_names_its_data_by_file_and_digest_not_by_path(version_dir, fixture_npz) -> None:
    text = (version_dir / "model_card.json").read_text()
    card = json.loads(text)
    assert card["data"]["file"] == "mnist-small.npz" and len(card["data"]["sha256"]) == 64
    for path in (fixture_npz.parent, version_dir.parents[1], Path.home()):
        assert str(path) not in text
    assert "model_dir" not in card["hyperparameters"] and "data" not in card["hyperparameters"]


def test_a_crash_mid_export_leaves_no_numbered_folder(tmp_path, fixture_npz, monkeypatch) -> None:
    def broken(*_args, **_kwargs):
        raise RuntimeError("disk full (injected)")

    monkeypatch.setattr(export, "write_tflite", broken)
    config = TrainConfig(epochs=1, limit=200, data=fixture_npz, model_dir=tmp_path, plots=False)
    with pytest.raises(RuntimeError, match="injected"):
        run(config, say=lambda _m: None)
    base = tmp_path / "mnist"
    assert versions.existing_versions(base) == []
    assert [p.name for p in base.iterdir() if not p.name.startswith(".export")] == []


def test_an_explicit_version_that_exists_fails_before_training(tmp_path, fixture_npz) -> None:
    (tmp_path / "mnist" / "2").mkdir(parents=True)
    config = TrainConfig(data=fixture_npz, model_dir=tmp_path, version=2)
    with pytest.raises(ExportError, match="already exists"):
        run(config, say=lambda _m: None)


def test_same_seed_gives_the_same_weights(tmp_path, fixture_npz) -> None:
    config = TrainConfig(
        epochs=1, limit=300, seed=7, data=fixture_npz, model_dir=tmp_path, plots=False
    )
    first, second = run(config, say=lambda _m: None), run(config, say=lambda _m: None)
    assert (first.version, second.version) == (1, 2)
    a = (first.version_dir / "model.tflite").read_bytes()
    b = (second.version_dir / "model.tflite").read_bytes()
    assert a == b
    other = run(
        TrainConfig(epochs=1, limit=300, seed=8, data=fixture_npz, model_dir=tmp_path, plots=False),
        say=lambda _m: None,
    )
    assert (other.version_dir / "model.tflite").read_bytes() != a


def test_cli_end_to_end_learns(tmp_path, fixture_npz) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mnist_training.cli",
            "--data",
            str(fixture_npz),
            "--limit",
            "2000",
            "--epochs",
            "3",
            "--batch-size",
            "32",
            "--model-dir",
            str(tmp_path),
            "--no-plots",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "done: version 1" in result.stdout and "epoch 3/3" in result.stdout
    assert "cudart" not in result.stderr and "absl" not in result.stderr  # TF kept quiet
    card = json.loads((tmp_path / "mnist" / "1" / "model_card.json").read_text())
    # The default (robust) recipe, 400 held-out fixture digits after three short epochs on
    # 2,000 distorted digits: far above the 10% of chance.
    assert card["recipe"]["name"] == "robust" and card["hyperparameters"]["batch_size"] == 32
    assert card["test"]["accuracy"] > 0.8
    shutil.rmtree(tmp_path / "mnist")
