"""A competent plain app on the gateway's runtime: FastAPI with one LiteRT interpreter per
worker, the body parsed and the answer written with orjson, no batching across requests.

MODEL_FILE=path/to/model_int8.tflite uvicorn fastapi_app:app --workers 2 --port 9101

The interpreter is called on the event loop: a call costs tens of microseconds, less than a
hop to the thread pool and back, and one interpreter must not run two calls at once.
"""

import os

import numpy as np
import orjson
from ai_edge_litert.interpreter import Interpreter
from fastapi import FastAPI, Request
from fastapi.responses import ORJSONResponse

app = FastAPI()
interpreter = Interpreter(model_path=os.environ["MODEL_FILE"], num_threads=1)
classify = interpreter.get_signature_runner("serving_default")


@app.get("/ready")
def ready() -> dict:
    return {"ready": True}


@app.post("/v1/models/mnist:predict")
async def predict(request: Request) -> ORJSONResponse:
    body = orjson.loads(await request.body())
    images = np.asarray(body["instances"], dtype=np.float32).reshape(-1, 28, 28, 1)
    return ORJSONResponse({"predictions": classify(images=images)["probabilities"].tolist()})
