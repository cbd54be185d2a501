"""BentoML with its adaptive batching, on the gateway's runtime (LiteRT, one thread per worker).

MODEL_FILE=path/to/model_int8.tflite bentoml serve bentoml_service:Mnist --port 9102

Two workers (one per core, as the gateway's defaults); each batches requests' ``instances``
([N, 28, 28, 1] floats) along the first axis up to 256 images, with a latency goal long enough
that a whole 256-image request is never refused (BentoML refuses what it predicts would miss
the goal).
"""

import os

import bentoml
import numpy as np


@bentoml.service(workers=2)
class Mnist:
    def __init__(self) -> None:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=os.environ["MODEL_FILE"], num_threads=1)
        self._classify = interpreter.get_signature_runner("serving_default")

    @bentoml.api(batchable=True, max_batch_size=256, max_latency_ms=60_000)
    def predict(self, instances: np.ndarray) -> np.ndarray:
        images = instances.astype(np.float32).reshape(-1, 28, 28, 1)
        return self._classify(images=images)["probabilities"]
