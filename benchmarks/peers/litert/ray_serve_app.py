"""Ray Serve with its batching (``@serve.batch``), on the gateway's runtime (LiteRT).

MODEL_FILE=path/to/model_int8.tflite python ray_serve_app.py PORT REPLICAS

A local Ray of two CPUs; each replica holds one interpreter (one thread) and batches up to 64
requests (2 ms wait) into one call, split back by each request's image count. Requests arrive
through Ray's HTTP proxy, as Ray Serve's users deploy it.
"""

import os
import sys
import time

import numpy as np
import orjson
import ray
from ray import serve
from starlette.requests import Request
from starlette.responses import Response


@serve.deployment(ray_actor_options={"num_cpus": 0})
class Mnist:
    def __init__(self) -> None:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=os.environ["MODEL_FILE"], num_threads=1)
        self._classify = interpreter.get_signature_runner("serving_default")

    @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.002)
    async def classify(self, requests: list[np.ndarray]) -> list[np.ndarray]:
        probabilities = self._classify(images=np.concatenate(requests))["probabilities"]
        return np.split(probabilities, np.cumsum([len(x) for x in requests])[:-1])

    async def __call__(self, request: Request) -> Response:
        if request.method == "GET":
            return Response(b'{"ready": true}', media_type="application/json")
        body = orjson.loads(await request.body())
        images = np.asarray(body["instances"], dtype=np.float32).reshape(-1, 28, 28, 1)
        answer = {"predictions": (await self.classify(images)).tolist()}
        return Response(orjson.dumps(answer), media_type="application/json")


if __name__ == "__main__":
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": int(sys.argv[1])})
    serve.run(Mnist.options(num_replicas=int(sys.argv[2])).bind(), route_prefix="/")
    while True:  # serve.run returns once deployed; the driver keeps Ray alive
        time.sleep(3600)
