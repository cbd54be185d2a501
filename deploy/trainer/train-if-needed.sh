#!/bin/sh
# Train and export only when the models folder holds no version yet. mnist-train reads its
# options from MNIST_TRAIN_<OPTION> variables (compose sets them); without MNIST_TRAIN_DATA,
# Keras downloads MNIST.
set -eu
models="${MNIST_MODEL_DIR:-/models}"
base="$models/mnist"
if [ -d "$base" ] && ls "$base" | grep -Eq '^[0-9]+$'; then
  echo "trainer: $base already has version(s) $(ls "$base" | grep -E '^[0-9]+$' | tr '\n' ' '); skipping"
  exit 0
fi
exec mnist-train --model-dir "$models" "$@"
