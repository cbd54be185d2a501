"""The SavedModel through TensorFlow (``--runtime savedmodel``); imported only when chosen."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mnist_contract.model import INPUT_NAME, SERVING_DEFAULT
from mnist_serving.runtimes.runtime import Session


class SavedModelRuntime:
    name = "savedmodel"
    precision = "fp32"  # the SavedModel

    def __init__(self, version_dir: Path) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        self._tf = tf
        self.version = int(version_dir.name)
        self._fn = tf.saved_model.load(str(version_dir)).signatures[SERVING_DEFAULT.name]

    healthy = True

    async def close(self) -> None:
        pass

    def session(self) -> Session:
        tf = self._tf

        def run(images: np.ndarray) -> np.ndarray:
            answer = self._fn(**{INPUT_NAME: tf.constant(images)})
            return np.asarray(answer[SERVING_DEFAULT.output])

        return run
