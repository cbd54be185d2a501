"""Recipes, their command-line and environment overrides, and the training distortions."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_training.augment import Distortions
from mnist_training.cli import build_parser
from mnist_training.errors import TrainingError
from mnist_training.recipes import DEFAULT_RECIPE, RECIPES
from mnist_training.train import TrainConfig

NO_DISTORTION = Distortions(
    rotate_degrees=0,
    scale=0,
    aspect=0,
    shear=0,
    shift_pixels=0,
    stroke_probability=0,
    blur_probability=0,
    contrast_low=1.0,
    gamma=0,
    noise_std=0,
)


def test_the_seed_recipe_is_the_seeds_exactly() -> None:
    seed = RECIPES["seed"]
    assert (seed.optimizer, seed.learning_rate, seed.epochs, seed.batch_size) == (
        "rmsprop",
        1e-3,
        5,
        64,
    )
    assert seed.distortions is None and seed.schedule == "constant" and not seed.weight_average


def test_the_default_is_the_robust_recipe_and_options_override_it() -> None:
    assert DEFAULT_RECIPE == "robust" and TrainConfig().resolved().distortions is not None
    tuned = TrainConfig(epochs=12, learning_rate=1e-3).resolved()
    assert (tuned.epochs, tuned.learning_rate, tuned.optimizer) == (12, 1e-3, "adam")
    with pytest.raises(TrainingError, match="--recipe must be one of robust, seed"):
        TrainConfig(recipe="fast").check()
    with pytest.raises(TrainingError, match="--epochs must be ≥ 1"):
        TrainConfig(epochs=0).check()


def test_options_come_from_mnist_train_variables_and_flags_win() -> None:
    environ = {
        "MNIST_TRAIN_EPOCHS": "3",
        "MNIST_TRAIN_RECIPE": "seed",
        "MNIST_TRAIN_LIMIT": "",
        "MNIST_TRAIN_PLOTS": "false",
        "MNIST_MODEL_DIR": "/models",
    }
    args = build_parser(environ).parse_args(["train"])
    assert (args.epochs, args.recipe, args.limit, args.plots) == (3, "seed", None, False)
    assert str(args.model_dir) == "/models"
    assert build_parser(environ).parse_args(["train", "--epochs", "7"]).epochs == 7


def test_a_misspelt_variable_is_an_error_not_a_silent_default(capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser({"MNIST_TRAIN_EPOCH": "3"})
    err = capsys.readouterr().err
    assert "unknown environment variable(s) MNIST_TRAIN_EPOCH" in err
    assert "MNIST_TRAIN_EPOCHS" in err


def _batch(digits, n: int = 16):
    import tensorflow as tf

    return tf.constant((digits["x_train"][:n].astype(np.float32) / 255.0)[..., None])


def test_distortions_are_reproducible_per_step_and_stay_in_range(digits) -> None:
    images = _batch(digits)
    distort = Distortions().batch_fn(seed=7)
    first, again, other = distort(3, images), distort(3, images), distort(4, images)
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.allclose(np.asarray(first), np.asarray(other))
    out = np.asarray(first)
    assert out.shape == images.shape and out.min() >= 0.0 and out.max() <= 1.0
    # Distorted, not destroyed: every digit keeps a good share of its ink.
    kept = out.sum(axis=(1, 2, 3)) / np.asarray(images).sum(axis=(1, 2, 3))
    assert kept.min() > 0.3


def test_no_distortion_leaves_the_digits_as_they_are(digits) -> None:
    images = _batch(digits)
    out = NO_DISTORTION.batch_fn(seed=1)(0, images)
    np.testing.assert_allclose(np.asarray(out), np.asarray(images), atol=1e-5)
