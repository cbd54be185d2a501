"""BentoML with its adaptive batching, serving the SavedModel's signature.

SAVEDMODEL=path/to/models/mnist/1 bentoml serve bentoml_service:Mnist --port 9004

A request's ``instances`` ([N, 28, 28, 1] floats) are batched with other requests' along the
first axis by BentoML's adaptive dispatcher, up to 256 images (a whole 256-image request fits)
with its default latency goal of 60 s: ``max_latency_ms`` is a goal BentoML enforces by
refusing (503 "process is overloaded") what it predicts would miss it, and a 10 ms goal
refused every 256-image request here.
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

    @bentoml.api(batchable=True, max_batch_size=256, max_latency_ms=60_000)
    def predict(self, instances: np.ndarray) -> np.ndarray:
        images = self._tf.constant(instances.astype(np.float32).reshape(-1, 28, 28, 1))
        return self._signature(images=images)["probabilities"].numpy()
