"""The training job: data → model → fit → evaluate → export → checks → publish.

Everything that can be wrong with the inputs is found before TensorFlow is imported, and
nothing reaches ``models/mnist/`` until every check has passed.
"""

from __future__ import annotations

import datetime as dt
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from mnist_contract.drift import REFERENCE_FILE, DriftReference
from mnist_contract.layout import (
    KERAS_FILE,
    MODEL_CARD_FILE,
    TFLITE_FILE,
    TFLITE_INT8_FILE,
    WARMUP_FILE,
)
from mnist_contract.model import INPUT_NAME, MODEL_NAME, SIGNATURES
from mnist_training import calibrate, evaluate, export, report, versions
from mnist_training.data import MnistData, load_mnist
from mnist_training.errors import TrainingError
from mnist_training.fit import fit, scale
from mnist_training.model import total_params
from mnist_training.quiet import load_tensorflow_quietly
from mnist_training.recipes import DEFAULT_RECIPE, OPTIMIZERS, RECIPES, Recipe


@dataclass(frozen=True)
class TrainConfig:
    """A recipe (``robust`` by default, ``seed`` for the seed's) and anything that overrides it."""

    recipe: str = DEFAULT_RECIPE
    epochs: int | None = None
    batch_size: int | None = None
    optimizer: str | None = None
    learning_rate: float | None = None
    seed: int = 42
    validation_split: float = 0.0
    calibration_split: float = calibrate.DEFAULT_SPLIT
    limit: int | None = None
    data: Path | None = None
    model_dir: Path = Path("models")
    version: int | None = None
    plots: bool = True
    verbose: bool = False  # let TensorFlow's native start-up lines through

    def resolved(self) -> Recipe:
        """The recipe with this config's overrides applied."""
        return RECIPES[self.recipe].with_overrides(
            epochs=self.epochs,
            batch_size=self.batch_size,
            optimizer=self.optimizer,
            learning_rate=self.learning_rate,
        )

    def check(self) -> None:
        if self.recipe not in RECIPES:
            raise TrainingError(
                f"--recipe must be one of {', '.join(RECIPES)} (got {self.recipe!r})"
            )
        recipe = self.resolved()
        problems = []
        if recipe.epochs < 1:
            problems.append(f"--epochs must be ≥ 1 (got {recipe.epochs})")
        if recipe.batch_size < 1:
            problems.append(f"--batch-size must be ≥ 1 (got {recipe.batch_size})")
        if recipe.optimizer not in OPTIMIZERS:
            problems.append(f"--optimizer must be one of {', '.join(OPTIMIZERS)}")
        if not recipe.learning_rate > 0:
            problems.append(f"--learning-rate must be > 0 (got {recipe.learning_rate})")
        if not 0.0 <= self.validation_split < 1.0:
            problems.append(f"--validation-split must be in [0, 1) (got {self.validation_split})")
        if not 0.0 <= self.calibration_split <= 0.5:
            problems.append(
                f"--calibration-split must be in [0, 0.5] (got {self.calibration_split})"
            )
        if self.limit is not None and self.limit < 10:
            problems.append(f"--limit must be ≥ 10 (got {self.limit})")
        if problems:
            raise TrainingError("; ".join(problems))


@dataclass
class TrainResult:
    version_dir: Path
    version: int
    test_accuracy: float
    test_loss: float
    train_seconds: float
    total_seconds: float
    card: dict[str, Any] = field(repr=False)


Say = Callable[[str], None]


def run(config: TrainConfig, say: Say = print) -> TrainResult:
    """Train, export and publish one version; raise :class:`TrainingError` on any failure."""
    started = time.perf_counter()
    config.check()
    base = versions.model_base(config.model_dir)
    versions.check_version_free(base, config.version)
    data = load_mnist(config.data).limited(config.limit)
    say(
        f"data: {data.source}: {len(data.x_train):,} training and {len(data.x_test):,} test "
        f"digits (sha256 {data.sha256[:12]}…)"
    )
    training, held_out = split_held_out(data, config.calibration_split)
    recipe = config.resolved()
    if not config.verbose:
        load_tensorflow_quietly()
    model, history, train_seconds = fit(recipe, config, training, say)
    temperature = _calibrate(model, held_out, say)
    trained = Trained(model, history, train_seconds, temperature, len(held_out[1]))
    with versions.staging_dir(base) as staged:
        card, evaluation, robustness = _export(trained, config, recipe, data, staged, say)
        card["drift_reference"] = _drift_reference(staged, held_out, data, config.seed, say)
        target = versions.publish(staged, base, config.version)
    version = int(target.name)
    card["version"] = version
    total = time.perf_counter() - started
    card["job_seconds"] = round(total, 1)  # data checks, training, export and checks
    # The version number is only known once claimed; record it without a second rename.
    report.write_card(target / MODEL_CARD_FILE, card)
    say(
        f"done: version {version} → {target}  test accuracy {evaluation.accuracy:.4f}  "
        f"loss {evaluation.loss:.4f}  {evaluate.format_summary(robustness)}  "
        f"training {train_seconds:.0f}s, total {total:.0f}s"
    )
    return TrainResult(
        target, version, evaluation.accuracy, evaluation.loss, train_seconds, total, card
    )


@dataclass(frozen=True)
class Trained:
    """A fitted model and what its fit and calibration left to report."""

    model: Any
    history: dict[str, list[float]]
    seconds: float
    temperature: float  # 1.0: not calibrated
    held_out: int  # training digits the temperature was fitted on


def split_held_out(
    data: MnistData, split: float
) -> tuple[MnistData, tuple[np.ndarray, np.ndarray]]:
    """The digits to train on, and the last ones of the training set kept for calibration."""
    count = calibrate.held_out_count(len(data.x_train), split)
    keep = len(data.x_train) - count
    training = replace(data, x_train=data.x_train[:keep], y_train=data.y_train[:keep])
    return training, (data.x_train[keep:], data.y_train[keep:])


def _calibrate(model: Any, held_out: tuple[np.ndarray, np.ndarray], say: Say) -> float:
    """Fit the temperature on the held-out digits and fold it into the model; 1.0 when none
    were held out."""
    images, labels = held_out
    if not len(labels):
        return 1.0
    logits = calibrate.logits(model, scale(images))
    temperature = calibrate.fit_temperature(logits, labels)
    before = calibrate.expected_calibration_error(calibrate.softmax(logits), labels)
    after = calibrate.expected_calibration_error(calibrate.softmax(logits / temperature), labels)
    calibrate.fold(model, temperature)
    say(
        f"calibration: temperature {temperature:.3f} fitted on {len(labels):,} held-out "
        f"training digits (their ECE {before:.4f} → {after:.4f})"
    )
    return temperature


def _export(
    trained: Trained,
    config: TrainConfig,
    recipe: Recipe,
    data: MnistData,
    staged: Path,
    say: Say,
) -> tuple[dict[str, Any], report.Evaluation, dict[str, Any]]:
    """Write the version into ``staged`` and check it; its card, test evaluation, robustness."""
    model = trained.model
    x_test = scale(data.x_test)
    say("export: SavedModel, LiteRT flatbuffer, warm-up requests, model card, plots")
    export.write_saved_model(model, staged)
    model.save(staged / KERAS_FILE)  # for Keras users and the peer benchmarks
    probs = export.saved_model_predict(staged, x_test)
    evaluation = report.Evaluation.from_probabilities(probs, data.y_test)
    export.write_tflite(staged, staged / TFLITE_FILE)
    parity = export.check_parity(probs, export.tflite_predict(staged / TFLITE_FILE, x_test))
    int8 = _export_int8(staged, data, probs, calibrated=trained.held_out > 0, say=say)
    warmups = export.write_warmup_requests(staged / WARMUP_FILE, x_test, data.y_test)
    say(
        "checks: other writers' digits and photo-like renderings, through the digits API's "
        "preprocessing"
    )
    most = None if config.limit is None else max(100, config.limit // 5)
    robustness, answers = evaluate.robustness(staged / TFLITE_FILE, data, config.seed, most)
    answers = {"mnist_test": (probs, data.y_test), **answers}
    card = _card(config, recipe, data, trained, evaluation, parity, warmups)
    card["evaluations"] = {"mnist_test": round(evaluation.accuracy, 6), **robustness}
    card["calibration"] = _calibration_card(trained, answers)
    card["int8"] = asdict(int8)
    if config.plots:
        _plots(model, trained.history, evaluation, x_test, staged)
        if trained.held_out:
            report.plot_reliability(answers, trained.temperature, staged / "reliability.png")
    report.write_card(staged / MODEL_CARD_FILE, card)
    return card, evaluation, robustness


REFERENCE_DIGITS = 3000  # training digits drawn for the drift reference's image features


def _drift_reference(
    staged: Path, held_out: tuple[np.ndarray, np.ndarray], data: MnistData, seed: int, say: Say
) -> dict[str, Any]:
    """The drift reference, written beside the model for the gateway's drift score: image
    features from training digits drawn at random (MNIST's training set is ordered by writer
    population, so its last digits are not typical), the model's answers on the held-out
    digits (on the test digits when none were held out)."""
    images, labels = held_out
    source = f"the last {len(labels):,} training digits, held out of training"
    if not len(labels):
        images, labels = data.x_test, data.y_test
        source = "the test digits (no training digits were held out)"
    answers = export.saved_model_predict(staged, scale(images))
    rng = np.random.default_rng(seed)
    drawn = rng.choice(len(data.x_train), min(REFERENCE_DIGITS, len(data.x_train)), replace=False)
    reference = DriftReference.of(scale(data.x_train[np.sort(drawn)]), answers, labels)
    (staged / REFERENCE_FILE).write_text(reference.dumps())
    say(
        f"drift reference: {REFERENCE_FILE} ({reference.images:,} training digits, answers on {source})"
    )
    return {
        "file": REFERENCE_FILE,
        "image_features_from": f"{reference.images:,} training digits drawn at random",
        "answers_from": source,
        "accuracy": round(reference.accuracy, 6),
        "mean_confidence": round(reference.mean_confidence, 6),
    }


REPRESENTATIVE_DIGITS = 500  # training digits whose activations set the int8 ranges


def _export_int8(
    staged: Path, data: MnistData, probs: np.ndarray, *, calibrated: bool, say: Say
) -> export.Int8Check:
    """The int8 file beside the float one, kept only when it answers like the SavedModel."""
    target = staged / TFLITE_INT8_FILE
    export.write_tflite_int8(staged, target, scale(data.x_train[:REPRESENTATIVE_DIGITS]))
    answers = export.tflite_predict(target, scale(data.x_test))
    check = export.check_int8(probs, answers, data.y_test, calibrated)
    if not check.published:
        target.unlink()
    say(
        f"int8: {'published' if check.published else 'not published'}: same digit on "
        f"{check.same_digit:.2%} of test images, accuracy {check.accuracy_int8:.4f} "
        f"(float {check.accuracy_fp32:.4f}), ECE {check.ece_int8:.4f} (float {check.ece_fp32:.4f})"
        + ("" if check.published else f"; {check.reason}")
    )
    return check


def _calibration_card(trained: Trained, answers: evaluate.Answers) -> dict[str, Any]:
    if not trained.held_out:
        return {"temperature": None, "reason": "--calibration-split 0: exported uncalibrated"}
    return {
        "temperature": round(trained.temperature, 5),
        "fitted_on": f"the last {trained.held_out:,} training digits, held out of training",
        "bins": calibrate.BINS,
        "ece": {
            name: calibrate.report(probs, labels, trained.temperature)
            for name, (probs, labels) in answers.items()
        },
    }


def _card(
    config: TrainConfig,
    recipe: Recipe,
    data: MnistData,
    trained: Trained,
    evaluation: report.Evaluation,
    parity: export.ParityReport,
    warmups: int,
) -> dict[str, Any]:
    import keras
    import tensorflow as tf

    return {
        "model_name": MODEL_NAME,
        "version": None,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "architecture": "Conv2D(32)→MaxPool→Conv2D(64)→MaxPool→Conv2D(128)→Flatten→Dense(10)",
        "parameters": total_params(),
        "framework": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "python": platform.python_version(),
        },
        "recipe": recipe.describe(),
        "hyperparameters": _hyperparameters(config, recipe),
        "data": _data_card(config, data, trained),
        "history": trained.history,
        "test": {
            "loss": round(evaluation.loss, 6),
            "accuracy": round(evaluation.accuracy, 6),
            "per_class": evaluation.per_class(),
            "confusion_matrix": evaluation.confusion.tolist(),
        },
        "litert_parity": asdict(parity),
        "warmup_requests": warmups,
        "signatures": {
            s.name: {
                INPUT_NAME: list(s.batched_input_shape),
                s.output: list(s.batched_output_shape),
            }
            for s in SIGNATURES.values()
        },
        "training_seconds": round(trained.seconds, 2),
    }


def _hyperparameters(config: TrainConfig, recipe: Recipe) -> dict[str, Any]:
    hyper = asdict(config)
    for local in ("plots", "verbose", "model_dir", "data"):  # this machine's, not the model's
        hyper.pop(local)
    # The values training ran with, overrides applied; the recipe block says where they came from.
    hyper.update(
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        optimizer=recipe.optimizer,
        learning_rate=recipe.learning_rate,
    )
    return hyper


def _data_card(config: TrainConfig, data: MnistData, trained: Trained) -> dict[str, Any]:
    """The data by file name and digest: no path of the machine that trained."""
    return {
        "file": data.file_name,
        "sha256": data.sha256,
        "train_images": len(data.x_train) - trained.held_out,
        "held_out_images": trained.held_out,
        "test_images": len(data.x_test),
        "subset": f"first {config.limit}" if config.limit is not None else None,
    }


def _plots(
    model: Any,
    history: dict[str, list[float]],
    evaluation: report.Evaluation,
    x_test: np.ndarray,
    out: Path,
) -> None:
    report.plot_training_curves(history, out / "training_curves.png")
    report.plot_confusion(evaluation.confusion, out / "confusion_matrix.png")
    first_conv = model.layers[0]
    responses = np.asarray(first_conv(x_test[:1]))[0]
    kernels = np.asarray(first_conv.get_weights()[0])
    report.plot_first_layer(kernels, responses, x_test[0, :, :, 0], out / "first_layer_filters.png")
