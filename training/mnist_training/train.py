"""The training job: data → model → fit → evaluate → export → checks → publish.

Everything that can be wrong with the inputs is found before TensorFlow is imported, and
nothing reaches ``models/mnist/`` until every check has passed.
"""

from __future__ import annotations

import datetime as dt
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mnist_training import export, report, versions
from mnist_training.data import MnistData, load_mnist
from mnist_training.errors import TrainingError
from mnist_training.model import build_model, total_params

OPTIMIZERS = ("rmsprop", "adam", "sgd")


@dataclass(frozen=True)
class TrainConfig:
    """The seed's recipe is the default: RMSprop, 5 epochs, batch 64, pixels / 255."""

    epochs: int = 5
    batch_size: int = 64
    optimizer: str = "rmsprop"
    learning_rate: float = 0.001
    seed: int = 42
    validation_split: float = 0.0
    limit: int | None = None
    data: Path | None = None
    model_dir: Path = Path("models")
    version: int | None = None
    plots: bool = True

    def check(self) -> None:
        problems = []
        if self.epochs < 1:
            problems.append(f"--epochs must be ≥ 1 (got {self.epochs})")
        if self.batch_size < 1:
            problems.append(f"--batch-size must be ≥ 1 (got {self.batch_size})")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"--optimizer must be one of {', '.join(OPTIMIZERS)}")
        if not self.learning_rate > 0:
            problems.append(f"--learning-rate must be > 0 (got {self.learning_rate})")
        if not 0.0 <= self.validation_split < 1.0:
            problems.append(f"--validation-split must be in [0, 1) (got {self.validation_split})")
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

    model, history, train_seconds = _fit(config, data, say)
    x_test = _scale(data.x_test)
    with versions.staging_dir(base) as staged:
        say("export: SavedModel, LiteRT flatbuffer, warm-up requests, model card, plots")
        export.write_saved_model(model, staged)
        model.save(staged / export.KERAS_FILE)  # for Keras users and the peer benchmarks
        probs = export.saved_model_predict(staged, x_test)
        evaluation = report.Evaluation.from_probabilities(probs, data.y_test)
        export.write_tflite(staged, staged / export.TFLITE_FILE)
        parity = export.check_parity(
            probs, export.tflite_predict(staged / export.TFLITE_FILE, x_test)
        )
        warmups = export.write_warmup_requests(staged / export.WARMUP_FILE, x_test, data.y_test)
        card = _card(config, data, history, evaluation, parity, warmups, train_seconds)
        if config.plots:
            _plots(model, history, evaluation, x_test, staged)
        report.write_card(staged / report.CARD_FILE, card)
        target = versions.publish(staged, base, config.version)
    version = int(target.name)
    card["version"] = version
    # The version number is only known once claimed; record it without a second rename.
    report.write_card(target / report.CARD_FILE, card)
    total = time.perf_counter() - started
    say(
        f"done: version {version} → {target}  test accuracy {evaluation.accuracy:.4f}  "
        f"loss {evaluation.loss:.4f}  training {train_seconds:.0f}s, total {total:.0f}s"
    )
    return TrainResult(
        target, version, evaluation.accuracy, evaluation.loss, train_seconds, total, card
    )


def _scale(x: np.ndarray) -> np.ndarray:
    return (x.astype(np.float32) / 255.0)[..., np.newaxis]


def _fit(
    config: TrainConfig, data: MnistData, say: Say
) -> tuple[Any, dict[str, list[float]], float]:
    import keras
    import tensorflow as tf

    # Same seed → same weights on the same machine: seed every generator, pin op choice.
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    model = build_model(config.seed)
    optimizer = {
        "rmsprop": keras.optimizers.RMSprop,
        "adam": keras.optimizers.Adam,
        "sgd": keras.optimizers.SGD,
    }[config.optimizer](learning_rate=config.learning_rate)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    say(
        f"train: {model.count_params():,} parameters, {config.optimizer} lr={config.learning_rate}, "
        f"{config.epochs} epochs × batch {config.batch_size}, seed {config.seed}"
    )
    started = time.perf_counter()
    fit = model.fit(
        _scale(data.x_train),
        data.y_train,
        epochs=config.epochs,
        batch_size=config.batch_size,
        validation_split=config.validation_split,
        # A live bar on a terminal; one line per epoch in logs, where bars turn into noise.
        verbose=1 if sys.stdout.isatty() else 2,
    )
    history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
    return model, history, time.perf_counter() - started


def _card(
    config: TrainConfig,
    data: MnistData,
    history: dict[str, list[float]],
    evaluation: report.Evaluation,
    parity: export.ParityReport,
    warmups: int,
    train_seconds: float,
) -> dict[str, Any]:
    import keras
    import tensorflow as tf

    hyper = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()}
    hyper.pop("plots")
    return {
        "model_name": versions.MODEL_NAME,
        "version": None,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "architecture": "Conv2D(32)→MaxPool→Conv2D(64)→MaxPool→Conv2D(128)→Flatten→Dense(10)",
        "parameters": total_params(),
        "framework": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "python": platform.python_version(),
        },
        "hyperparameters": hyper,
        "data": {
            "source": data.source,
            "sha256": data.sha256,
            "train_images": len(data.x_train),
            "test_images": len(data.x_test),
        },
        "history": history,
        "test": {
            "loss": round(evaluation.loss, 6),
            "accuracy": round(evaluation.accuracy, 6),
            "per_class": evaluation.per_class(),
            "confusion_matrix": evaluation.confusion.tolist(),
        },
        "litert_parity": asdict(parity),
        "warmup_requests": warmups,
        "signatures": {
            export.SERVING_DEFAULT: {"images": [-1, 28, 28, 1], "probabilities": [-1, 10]},
            export.PREDICT_IMAGES: {"images": [-1, 784], "scores": [-1, 10]},
        },
        "training_seconds": round(train_seconds, 2),
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
