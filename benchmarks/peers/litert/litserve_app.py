"""LitServe with its batching, on the gateway's runtime (LiteRT, one thread per worker).

MODEL_FILE=path/to/model_int8.tflite python litserve_app.py PORT WORKERS

LitServe batches requests, not images: a batch of up to 64 requests (2 ms wait) is stacked
into one interpreter call and the answer split back by each request's image count, so
multi-image requests batch too.
"""

import os
import sys

import litserve as ls
import numpy as np
from ai_edge_litert.interpreter import Interpreter


class MnistAPI(ls.LitAPI):
    def setup(self, device: str) -> None:
        interpreter = Interpreter(model_path=os.environ["MODEL_FILE"], num_threads=1)
        self._classify = interpreter.get_signature_runner("serving_default")

    def decode_request(self, request: dict) -> np.ndarray:
        return np.asarray(request["instances"], dtype=np.float32).reshape(-1, 28, 28, 1)

    def batch(self, inputs: list[np.ndarray]) -> tuple[np.ndarray, list[int]]:
        return np.concatenate(inputs), [len(x) for x in inputs]

    def predict(self, batched: tuple[np.ndarray, list[int]]) -> list[np.ndarray]:
        images, sizes = batched
        probabilities = self._classify(images=images)["probabilities"]
        return np.split(probabilities, np.cumsum(sizes)[:-1])

    def unbatch(self, output: list[np.ndarray]) -> list[np.ndarray]:
        return output

    def encode_response(self, output: np.ndarray) -> dict:
        return {"predictions": output.tolist()}


if __name__ == "__main__":
    api = MnistAPI(max_batch_size=64, batch_timeout=0.002, api_path="/v1/models/mnist:predict")
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=int(sys.argv[2]))
    server.run(
        host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", generate_client_file=False
    )
