"""One recipe's training run: optimizer, schedule, input pipeline, progress, history.

TensorFlow is imported here and only here (plus export), so everything before it (data checks,
option checks) fails fast without TensorFlow's start-up cost.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from mnist_contract.pixels import model_input
from mnist_training.augment import dataset
from mnist_training.model import build_model

if TYPE_CHECKING:
    from mnist_training.data import MnistData
    from mnist_training.recipes import Recipe
    from mnist_training.train import TrainConfig

Say = Callable[[str], None]


def scale(x: np.ndarray) -> np.ndarray:
    """uint8 N×28×28 → float32 N×28×28×1 in [0, 1], the model's input."""
    return model_input(x)


def fit(
    recipe: Recipe, config: TrainConfig, data: MnistData, say: Say
) -> tuple[Any, dict[str, list[float]], float]:
    """Train a fresh model with ``recipe``; the model, its per-epoch history, training seconds."""
    import keras
    import tensorflow as tf

    # Same seed → same weights on the same machine: seed every generator, pin op choice.
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    model = build_model(config.seed)
    steps = math.ceil(len(data.x_train) / recipe.batch_size)
    smoothing = recipe.label_smoothing
    model.compile(
        optimizer=_optimizer(recipe, steps),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)
        if smoothing
        else "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    say(
        f"train: recipe {recipe.name} ({recipe.summary}); {model.count_params():,} parameters, "
        f"{recipe.optimizer} lr={recipe.learning_rate} {recipe.schedule}, {recipe.epochs} epochs "
        f"× batch {recipe.batch_size}, seed {config.seed}"
    )
    x, y = scale(data.x_train), data.y_train
    if smoothing:
        y = np.eye(10, dtype=np.float32)[y]  # smoothing needs one-hot targets
    validation: tuple[np.ndarray, np.ndarray] | None = None
    if config.validation_split > 0:
        cut = int(len(x) * (1 - config.validation_split))
        x, y, validation = x[:cut], y[:cut], (x[cut:], y[cut:])
    train = dataset(x, y, recipe.batch_size, config.seed, recipe.distortions)
    started = time.perf_counter()
    history = model.fit(
        train,
        epochs=recipe.epochs,
        steps_per_epoch=math.ceil(len(x) / recipe.batch_size),
        validation_data=validation,
        shuffle=False,  # the dataset shuffles itself
        verbose=0,
        callbacks=[Progress(recipe.epochs, math.ceil(len(x) / recipe.batch_size), say).callback()],
    )
    seconds = time.perf_counter() - started
    return model, {k: [float(v) for v in vs] for k, vs in history.history.items()}, seconds


def _optimizer(recipe: Recipe, steps_per_epoch: int) -> Any:
    import keras

    rate: Any = recipe.learning_rate
    if recipe.schedule == "cosine":
        warmup = int(steps_per_epoch * recipe.warmup_epochs)
        rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=recipe.learning_rate / 10 if warmup else recipe.learning_rate,
            decay_steps=max(1, steps_per_epoch * recipe.epochs - warmup),
            warmup_target=recipe.learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    kinds = {
        "rmsprop": keras.optimizers.RMSprop,
        "adam": keras.optimizers.Adam,
        "sgd": keras.optimizers.SGD,
    }
    # With weight averaging, Keras swaps the averaged weights in when fit() ends.
    return kinds[recipe.optimizer](learning_rate=rate, use_ema=recipe.weight_average)


class Progress:
    """A live bar over the whole run on a terminal; one line per epoch in logs."""

    def __init__(self, epochs: int, steps_per_epoch: int, say: Say) -> None:
        self.epochs, self.steps, self.say = epochs, steps_per_epoch, say
        self.bar: Any = None
        self.started = 0.0

    def callback(self) -> Any:
        import keras

        return keras.callbacks.LambdaCallback(
            on_train_begin=self.begin,
            on_train_batch_end=self.step,
            on_epoch_end=self.epoch_end,
            on_train_end=self.end,
        )

    def begin(self, logs: dict[str, Any] | None = None) -> None:
        self.started = time.perf_counter()
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=self.epochs * self.steps, unit="step", desc="train")

    def step(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if batch % 50 == 0 and logs:
                self.bar.set_postfix_str(self._numbers(logs), refresh=False)

    def epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        line = (
            f"epoch {epoch + 1}/{self.epochs}: {self._numbers(logs or {})} "
            f"({time.perf_counter() - self.started:.0f}s)"
        )
        if self.bar is not None:
            self.bar.write(line)
        else:
            self.say(line)

    def end(self, logs: dict[str, Any] | None = None) -> None:
        if self.bar is not None:
            self.bar.close()

    @staticmethod
    def _numbers(logs: dict[str, Any]) -> str:
        shown = ("loss", "accuracy", "val_accuracy")
        return " ".join(f"{k} {float(logs[k]):.4f}" for k in shown if k in logs)
