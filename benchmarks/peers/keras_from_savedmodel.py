"""Write ``model.keras`` beside a version exported before the job saved one (the peers load it).

    python benchmarks/peers/keras_from_savedmodel.py models/mnist/1

Rebuilds the architecture, copies each variable from the SavedModel (every weight in this model
has a distinct shape, so shapes pair them unambiguously), and checks the two agree on real digits.
"""

import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

from mnist_training.model import build_model

version = Path(sys.argv[1])
loaded = tf.saved_model.load(str(version))
by_shape = {tuple(v.shape): v.numpy() for v in loaded.variables}
model = build_model(seed=0)
model.set_weights([by_shape[tuple(w.shape)] for w in model.weights])
x = np.random.default_rng(0).random((64, 28, 28, 1), dtype=np.float32)
reference = loaded.signatures["serving_default"](images=tf.constant(x))["probabilities"].numpy()
assert np.abs(model.predict(x, verbose=0) - reference).max() < 1e-5, "weights did not map"
model.save(version / "model.keras")
print(f"wrote {version / 'model.keras'}")
