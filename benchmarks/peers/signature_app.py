"""A competent plain baseline: FastAPI calling the SavedModel's serving signature directly.

SAVEDMODEL=path/to/models/mnist/1 uvicorn signature_app:app --port 9003

What an engineer who knows TensorFlow ships without a serving framework: the exported
signature (a concrete function, no Keras ``predict`` loop), the body parsed with orjson, the
call in the thread pool so the event loop keeps reading, no batching across requests.
"""

import os

import numpy as np
import orjson
import tensorflow as tf
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import ORJSONResponse

app = FastAPI()
signature = tf.saved_model.load(os.environ["SAVEDMODEL"]).signatures["serving_default"]


def classify(images: np.ndarray) -> np.ndarray:
    return signature(images=tf.constant(images))["probabilities"].numpy()


@app.get("/ready")
def ready() -> dict:
    return {"ready": True}


@app.post("/v1/models/mnist:predict")
async def predict(request: Request) -> ORJSONResponse:
    body = orjson.loads(await request.body())
    images = np.asarray(body["instances"], dtype=np.float32).reshape(-1, 28, 28, 1)
    return ORJSONResponse({"predictions": (await run_in_threadpool(classify, images)).tolist()})
