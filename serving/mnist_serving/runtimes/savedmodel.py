"""The SavedModel through TensorFlow (``--runtime savedmodel``); imported only when chosen."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mnist_serving.runtimes import Session


class SavedModelRuntime:
    name = "savedmodel"

    def __init__(self, version_dir: Path) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        self._tf = tf
        self.version = int(version_dir.name)
        self._fn = tf.saved_model.load(str(version_dir)).signatures["serving_default"]

    healthy = True

    async def close(self) -> None:
        pass

    def session(self) -> Session:
        tf = self._tf

        def run(images: np.ndarray) -> np.ndarray:
            return np.asarray(self._fn(images=tf.constant(images))["probabilities"])

        return run
