"""MLServer custom runtime for the Keras model, with MLServer's adaptive batching on."""

import os

import keras
import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class MnistRuntime(MLModel):
    async def load(self) -> bool:
        self.model = keras.models.load_model(os.environ["MODEL"])
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32).reshape(-1, 28, 28, 1)
        probs = self.model.predict(x, verbose=0)
        return InferenceResponse(
            model_name=self.name, outputs=[NumpyCodec.encode_output("probabilities", probs)]
        )
