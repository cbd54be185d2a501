"""The naive baseline, as tutorials write it: FastAPI, the Keras model, model.predict per request.

MODEL=path/to/model.keras uvicorn naive_app:app --port 9001
"""

import os

import keras
import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()
model = keras.models.load_model(os.environ["MODEL"])


class Request(BaseModel):
    instances: list


@app.get("/ready")
def ready() -> dict:
    return {"ready": True}


@app.post("/predict")
def predict(request: Request) -> dict:
    x = np.array(request.instances, dtype=np.float32)
    return {"predictions": model.predict(x, verbose=0).tolist()}
