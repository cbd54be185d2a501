"""MLServer custom runtime on the gateway's runtime (LiteRT), MLServer's adaptive batching on."""

import os

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class MnistRuntime(MLModel):
    async def load(self) -> bool:
        interpreter = Interpreter(model_path=os.environ["MODEL_FILE"], num_threads=1)
        self._classify = interpreter.get_signature_runner("serving_default")
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32).reshape(-1, 28, 28, 1)
        probs = self._classify(images=x)["probabilities"]
        return InferenceResponse(
            model_name=self.name, outputs=[NumpyCodec.encode_output("probabilities", probs)]
        )
