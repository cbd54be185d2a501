"""``mnist-train``: train and export (the default), or ``mnist-train summary`` to explain the model.

mnist-train --data ../shared/data/mnist.npz            # the robust recipe, next free version
mnist-train --recipe seed --data ../shared/data/mnist.npz   # the seed's recipe exactly
mnist-train --limit 2000 --epochs 1                    # a quick run on a subset
mnist-train summary                                    # layers, shapes, parameter arithmetic

Every option can also come from the environment as ``MNIST_TRAIN_<OPTION>`` (``--batch-size`` is
``MNIST_TRAIN_BATCH_SIZE``; ``--model-dir`` is ``MNIST_MODEL_DIR``, shared with the gateway), so a
container or a job manifest sets them without a command line. Flags win over the environment.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from mnist_training.errors import TrainingError
from mnist_training.model import explain_layers, format_summary
from mnist_training.recipes import DEFAULT_RECIPE, OPTIMIZERS, RECIPES
from mnist_training.train import TrainConfig, run

_COMMANDS = ("train", "summary")
ENV_PREFIX = "MNIST_TRAIN_"
# Options whose variable is not MNIST_TRAIN_<OPTION>: the model folder is the gateway's too.
_ENV_NAMES = {"model_dir": "MNIST_MODEL_DIR"}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def build_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The command line, its defaults taken from ``environ`` (the process's environment)."""
    parser = argparse.ArgumentParser(
        prog="mnist-train",
        description="Train the MNIST convnet and export it as models/mnist/<N>/ for TF Serving.",
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("summary", help="print each layer's output shape and parameter arithmetic")
    train = sub.add_parser(
        "train",
        help="train and export a new version (the default)",
        epilog="Each option may be set as MNIST_TRAIN_<OPTION> in the environment "
        "(MNIST_MODEL_DIR for --model-dir).",
    )
    _add_recipe_options(train)
    _add_data_options(train)
    _defaults_from_environment(train, os.environ if environ is None else environ)
    return parser


def _add_recipe_options(train: argparse.ArgumentParser) -> None:
    """What to train and how: the recipe and the values that override it."""
    defaults = TrainConfig()
    recipes = "; ".join(f"{r.name}: {r.summary}" for r in RECIPES.values())
    train.add_argument(
        "--recipe",
        choices=tuple(RECIPES),
        default=DEFAULT_RECIPE,
        help=f"how to train ({recipes}; default: {DEFAULT_RECIPE})",
    )
    train.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    train.add_argument(
        "--batch-size", type=int, default=None, help="override the recipe's batch size"
    )
    train.add_argument(
        "--optimizer", choices=OPTIMIZERS, default=None, help="override the recipe's optimizer"
    )
    train.add_argument(
        "--learning-rate", type=float, default=None, help="override the recipe's (peak) rate"
    )
    train.add_argument(
        "--seed", type=int, default=defaults.seed, help="same seed → same weights on one machine"
    )
    train.add_argument(
        "--validation-split",
        type=float,
        default=defaults.validation_split,
        help="fraction of the training digits held out for validation",
    )
    train.add_argument(
        "--calibration-split",
        type=float,
        default=defaults.calibration_split,
        help="fraction of the training digits (the last ones) held out to fit the confidence's "
        "temperature; 0 exports the model uncalibrated",
    )


def _add_data_options(train: argparse.ArgumentParser) -> None:
    """What to train on and where the version goes."""
    defaults = TrainConfig()
    train.add_argument(
        "--limit", type=int, default=None, help="train on the first N digits only (quick runs)"
    )
    train.add_argument(
        "--data",
        type=Path,
        default=None,
        help="a Keras-layout mnist.npz or a folder of the four IDX files (default: Keras download)",
    )
    train.add_argument(
        "--model-dir",
        type=Path,
        default=defaults.model_dir,
        help="base folder; the version goes to <model-dir>/mnist/<N>/ (default: models/)",
    )
    train.add_argument(
        "--version", type=int, default=None, help="version number (default: next free)"
    )
    train.add_argument("--no-plots", dest="plots", action="store_false", help="skip the PNG plots")
    train.add_argument(
        "--verbose", action="store_true", help="show TensorFlow's own start-up log lines"
    )


def env_names(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each train option's destination → the environment variable that may set it."""
    train = _train_parser(parser)
    return {
        a.dest: _ENV_NAMES.get(a.dest, ENV_PREFIX + a.dest.upper())
        for a in train._actions
        if a.option_strings and a.dest != "help"
    }


def _train_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    train: argparse.ArgumentParser = sub.choices["train"]
    return train


def _defaults_from_environment(train: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Take option defaults from MNIST_TRAIN_* (a typo is an error, not a silent default)."""
    names = {}
    for action in train._actions:
        if action.option_strings and action.dest != "help":
            names[_ENV_NAMES.get(action.dest, ENV_PREFIX + action.dest.upper())] = action
    unknown = sorted(k for k in environ if k.startswith(ENV_PREFIX) and k not in names)
    if unknown:
        train.error(
            f"unknown environment variable(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(n for n in names if n.startswith(ENV_PREFIX)))}"
        )
    for name, action in names.items():
        raw = environ.get(name, "").strip()
        if not raw:
            continue  # unset or empty: compose passes "" for a variable the user left out
        if isinstance(action, argparse._StoreFalseAction):
            if raw.lower() not in (*_TRUE, *_FALSE):
                train.error(f"{name}={raw!r}: expected true or false")
            action.default = raw.lower() in _TRUE
        else:
            action.default = raw  # argparse converts a string default with the option's type


def main(argv: list[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if not args_in or args_in[0] not in (*_COMMANDS, "-h", "--help"):
        args_in.insert(0, "train")
    args = build_parser().parse_args(args_in)
    if args.command == "summary":
        print(format_summary(explain_layers()))
        return 0
    config = TrainConfig(
        recipe=args.recipe,
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        learning_rate=args.learning_rate,
        seed=args.seed,
        validation_split=args.validation_split,
        calibration_split=args.calibration_split,
        limit=args.limit,
        data=args.data,
        model_dir=args.model_dir,
        version=args.version,
        plots=args.plots,
        verbose=args.verbose,
    )
    try:
        run(config, say=functools.partial(print, flush=True))  # live in logs and `docker logs`
    except TrainingError as exc:
        print(f"mnist-train: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mnist-train: interrupted; nothing was published", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
