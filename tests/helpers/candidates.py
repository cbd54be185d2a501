"""Candidate versions for the rollout tests, made from a real one with TensorFlow: the same
model (a good candidate), one that answers the digit after the right one (a bad one), and one
that does a fixed amount of useless work per image (~25 ms here: a slow one). Each is the
source folder with its LiteRT file replaced, published as the trainer publishes."""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path
from typing import Literal

from mnist_contract.layout import TFLITE_FILE
from tests.helpers.versions import without_int8

Kind = Literal["same", "shifted", "slow"]


def publish_candidate(source: Path, root: Path, version: int, kind: Kind) -> Path:
    staging = root / "mnist" / f".staging-{version}"
    shutil.copytree(source, staging)
    without_int8(staging)
    if kind != "same":
        (staging / TFLITE_FILE).write_bytes(_converted(str(source / "model.keras"), kind))
    final = root / "mnist" / str(version)
    staging.rename(final)
    return final


@cache
def _converted(keras_file: str, kind: Kind) -> bytes:
    import tensorflow as tf

    keras = tf.keras

    class Shifted(keras.layers.Layer):
        """The probabilities moved one digit on: 3's answer is given for a 2."""

        def call(self, probs):  # type: ignore[no-untyped-def]
            return tf.concat([probs[:, 9:], probs[:, :9]], axis=1)

    class Busy(keras.layers.Layer):
        """3,000 small matrix products per image, whose result is multiplied by zero."""

        def build(self, shape):  # type: ignore[no-untyped-def]
            self.w = self.add_weight(shape=(256, 256), initializer="random_normal", trainable=False)

        def call(self, inputs):  # type: ignore[no-untyped-def]
            images, probs = inputs
            v = tf.reshape(images, [-1, 784])[:, :256]
            _, v = tf.while_loop(
                lambda i, v: i < 3000,
                lambda i, v: (i + 1, tf.tanh(tf.matmul(v, self.w))),
                [tf.constant(0), v],
            )
            return probs + 0.0 * tf.reduce_sum(v, axis=1, keepdims=True)

    model = keras.models.load_model(keras_file)
    images = keras.Input((28, 28, 1), name="images")
    out = Shifted()(model(images)) if kind == "shifted" else Busy()([images, model(images)])
    # Named as the contract names the output, which the gateway reads the answer by.
    wrapper = keras.Model(images, {"probabilities": out})
    converted: bytes = tf.lite.TFLiteConverter.from_keras_model(wrapper).convert()
    return converted
