"""KServe's own model server (``kserve.ModelServer``: its V2 REST and gRPC) hosting a model of
this contract, for the SDK's V2 tests: ``images`` in, ``probabilities`` out.

The model is :mod:`template_model` (numpy only, no TensorFlow here), which
``tests/end_to_end/client/test_v2_peers.py`` also imports, so it knows what the server must answer.

    python kserve_server.py DIGITS.npz --http_port 8080 --grpc_port 8081
"""

from __future__ import annotations

import sys

import numpy as np
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer
from template_model import probabilities, templates


class Digits(Model):
    def __init__(self, weights: np.ndarray) -> None:
        super().__init__("mnist")
        self.weights = weights
        self.ready = True

    def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        answer = probabilities(payload.inputs[0].as_numpy(), self.weights)
        output = InferOutput(name="probabilities", shape=list(answer.shape), datatype="FP32")
        output.set_data_from_numpy(answer, binary_data=False)
        return InferResponse(model_name="mnist", infer_outputs=[output], response_id=payload.id)


if __name__ == "__main__":
    ModelServer().start([Digits(templates(sys.argv[1]))])
