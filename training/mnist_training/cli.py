"""``mnist-train``: train and export (the default), or ``mnist-train summary`` to explain the model.

mnist-train --data ../shared/data/mnist.npz            # the seed's recipe, next free version
mnist-train --limit 2000 --epochs 1                    # a quick run on a subset
mnist-train summary                                    # layers, shapes, parameter arithmetic
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mnist_training.errors import TrainingError
from mnist_training.model import explain_layers, format_summary
from mnist_training.train import OPTIMIZERS, TrainConfig, run

_COMMANDS = ("train", "summary")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnist-train",
        description="Train the MNIST convnet and export it as models/mnist/<N>/ for TF Serving.",
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("summary", help="print each layer's output shape and parameter arithmetic")
    train = sub.add_parser("train", help="train and export a new version (the default)")
    defaults = TrainConfig()
    train.add_argument("--epochs", type=int, default=defaults.epochs)
    train.add_argument("--batch-size", type=int, default=defaults.batch_size)
    train.add_argument("--optimizer", choices=OPTIMIZERS, default=defaults.optimizer)
    train.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    train.add_argument(
        "--seed", type=int, default=defaults.seed, help="same seed → same weights on one machine"
    )
    train.add_argument("--validation-split", type=float, default=defaults.validation_split)
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
        default=Path(os.environ.get("MNIST_MODEL_DIR", defaults.model_dir)),
        help="base folder; the version goes to <model-dir>/mnist/<N>/ (default: models/)",
    )
    train.add_argument(
        "--version", type=int, default=None, help="version number (default: next free)"
    )
    train.add_argument("--no-plots", dest="plots", action="store_false", help="skip the PNG plots")
    return parser


def main(argv: list[str] | None = None) -> int:
    # TensorFlow's C++ start-up chatter (no GPU found, ...) buries the job's own lines.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args_in = list(sys.argv[1:] if argv is None else argv)
    if not args_in or args_in[0] not in (*_COMMANDS, "-h", "--help"):
        args_in.insert(0, "train")
    args = build_parser().parse_args(args_in)
    if args.command == "summary":
        print(format_summary(explain_layers()))
        return 0
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        learning_rate=args.learning_rate,
        seed=args.seed,
        validation_split=args.validation_split,
        limit=args.limit,
        data=args.data,
        model_dir=args.model_dir,
        version=args.version,
        plots=args.plots,
    )
    try:
        run(config)
    except TrainingError as exc:
        print(f"mnist-train: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mnist-train: interrupted; nothing was published", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
