"""Training recipes: how the one fixed architecture is trained. The model never changes.

``seed`` is the seed's recipe exactly (pixels / 255, RMSprop 1e-3, 5 epochs, batch 64, nothing
else), kept to reproduce it. ``robust``, the default, trains the same seven layers on distorted
digits (:mod:`mnist_training.augment`) with Adam, a warm-up then cosine learning rate, an
exponential moving average of the weights and label smoothing, in 8 epochs (about five minutes
on two cores); ``docs/training.md`` has what each choice was measured to be worth.

Command-line options override a recipe's values one by one::

    >>> RECIPES["robust"].with_overrides(epochs=12).epochs
    12
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from mnist_training.augment import Distortions

OPTIMIZERS = ("rmsprop", "adam", "sgd")
Schedule = Literal["constant", "cosine"]


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str
    epochs: int
    batch_size: int
    optimizer: str
    learning_rate: float
    schedule: Schedule = "constant"
    warmup_epochs: float = 0.0
    weight_average: bool = False  # keep an exponential moving average of the weights, export it
    label_smoothing: float = 0.0  # train towards (1 - ε) on the true digit, ε / 10 on each digit
    distortions: Distortions | None = field(default=None)

    def with_overrides(self, **values: Any) -> Recipe:
        """This recipe with every value that is not ``None`` replaced."""
        chosen = {k: v for k, v in values.items() if v is not None}
        return replace(self, **chosen) if chosen else self

    def describe(self) -> dict[str, Any]:
        """Plain data for the model card."""
        return {
            "name": self.name,
            "summary": self.summary,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "optimizer": self.optimizer,
            "learning_rate": self.learning_rate,
            "schedule": self.schedule,
            "warmup_epochs": self.warmup_epochs,
            "weight_average": self.weight_average,
            "label_smoothing": self.label_smoothing,
            "distortions": None if self.distortions is None else vars(self.distortions),
        }


RECIPES: dict[str, Recipe] = {
    "robust": Recipe(
        name="robust",
        summary="distorted digits, Adam with warm-up and cosine decay, weight averaging, "
        "label smoothing",
        epochs=8,
        batch_size=128,
        optimizer="adam",
        learning_rate=3e-3,
        schedule="cosine",
        warmup_epochs=1.0,
        weight_average=True,
        label_smoothing=0.1,
        distortions=Distortions(),
    ),
    "seed": Recipe(
        name="seed",
        summary="the seed's recipe: RMSprop, 5 epochs, batch 64, pixels / 255, no augmentation",
        epochs=5,
        batch_size=64,
        optimizer="rmsprop",
        learning_rate=1e-3,
    ),
}
DEFAULT_RECIPE = "robust"
