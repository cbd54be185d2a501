"""The training job: data → model → fit → evaluate → export → checks → publish.

Everything that can be wrong with the inputs is found before TensorFlow is imported, and
nothing reaches ``models/mnist/`` until every check has passed.
"""

from __future__ import annotations

import datetime as dt
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mnist_contract.layout import KERAS_FILE, MODEL_CARD_FILE, TFLITE_FILE, WARMUP_FILE
from mnist_contract.model import INPUT_NAME, MODEL_NAME, SIGNATURES
from mnist_training import evaluate, export, report, versions
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

    recipe = config.resolved()
    if not config.verbose:
        load_tensorflow_quietly()
    model, history, train_seconds = fit(recipe, config, data, say)
    x_test = scale(data.x_test)
    with versions.staging_dir(base) as staged:
        say("export: SavedModel, LiteRT flatbuffer, warm-up requests, model card, plots")
        export.write_saved_model(model, staged)
        model.save(staged / KERAS_FILE)  # for Keras users and the peer benchmarks
        probs = export.saved_model_predict(staged, x_test)
        evaluation = report.Evaluation.from_probabilities(probs, data.y_test)
        export.write_tflite(staged, staged / TFLITE_FILE)
        parity = export.check_parity(probs, export.tflite_predict(staged / TFLITE_FILE, x_test))
        warmups = export.write_warmup_requests(staged / WARMUP_FILE, x_test, data.y_test)
        say(
            "checks: other writers' digits and photo-like renderings, through the digits API's preprocessing"
        )
        most = None if config.limit is None else max(100, config.limit // 5)
        robustness = evaluate.robustness(staged / TFLITE_FILE, data, config.seed, most)
        card = _card(config, recipe, data, history, evaluation, parity, warmups, train_seconds)
        card["evaluations"] = {"mnist_test": round(evaluation.accuracy, 6), **robustness}
        if config.plots:
            _plots(model, history, evaluation, x_test, staged)
        report.write_card(staged / MODEL_CARD_FILE, card)
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


def _card(
    config: TrainConfig,
    recipe: Recipe,
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
    hyper.pop("verbose")
    # The values training ran with, overrides applied; the recipe block says where they came from.
    hyper.update(
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        optimizer=recipe.optimizer,
        learning_rate=recipe.learning_rate,
    )
    return {
        "model_name": MODEL_NAME,
        "version": None,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "architecture": "Conv2D(32)→MaxPool→Conv2D(64)→MaxPool→Conv2D(128)→Flatten→Dense(10)",
        "parameters": total_params(),
        "framework": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "python": platform.python_version(),
        },
        "recipe": recipe.describe(),
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
            s.name: {
                INPUT_NAME: list(s.batched_input_shape),
                s.output: list(s.batched_output_shape),
            }
            for s in SIGNATURES.values()
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
