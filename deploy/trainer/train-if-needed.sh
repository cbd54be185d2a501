#!/bin/sh
# Train and export only when /models/mnist holds no version yet (Keras downloads MNIST).
set -eu
base="${MNIST_MODEL_DIR:-/models}/mnist"
if [ -d "$base" ] && ls "$base" | grep -Eq '^[0-9]+$'; then
  echo "trainer: $base already has version(s) $(ls "$base" | grep -E '^[0-9]+$' | tr '\n' ' '); skipping"
  exit 0
fi
exec mnist-train --model-dir "${MNIST_MODEL_DIR:-/models}" "$@"
