"""BentoML with its adaptive batching, serving the SavedModel's signature.

SAVEDMODEL=path/to/models/mnist/1 bentoml serve bentoml_service:Mnist --port 9004

A request's ``instances`` ([N, 28, 28, 1] floats) are batched with other requests' along the
first axis, up to 64 images or 10 ms, as BentoML's docs configure a batchable API.
"""

import os

import bentoml
import numpy as np


@bentoml.service(workers=1)
class Mnist:
    def __init__(self) -> None:
        import tensorflow as tf

        self._tf = tf
        self._signature = tf.saved_model.load(os.environ["SAVEDMODEL"]).signatures[
            "serving_default"
        ]

    @bentoml.api(batchable=True, max_batch_size=64, max_latency_ms=10)
    def predict(self, instances: np.ndarray) -> np.ndarray:
        images = self._tf.constant(instances.astype(np.float32).reshape(-1, 28, 28, 1))
        return self._signature(images=images)["probabilities"].numpy()
