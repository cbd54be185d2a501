"""The seed's plain training script, as a tutorial writes it: the baseline for the job's overhead.

python -m benchmarks.seed_train ../shared/data/mnist.npz
"""

import sys
import time

import keras
import numpy as np

started = time.perf_counter()
with np.load(sys.argv[1]) as d:
    x_train, y_train, x_test, y_test = d["x_train"], d["y_train"], d["x_test"], d["y_test"]
x_train = (x_train.astype("float32") / 255)[..., None]
x_test = (x_test.astype("float32") / 255)[..., None]
model = keras.Sequential(
    [
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(128, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax"),
    ]
)
model.compile("rmsprop", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=5, batch_size=64, verbose=2)
loss, acc = model.evaluate(x_test, y_test, verbose=0)
print(f"seed: test accuracy {acc:.4f} loss {loss:.4f} wall {time.perf_counter() - started:.1f}s")
