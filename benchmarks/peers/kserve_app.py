"""KServe's Python ModelServer with the Keras model: its V1 protocol is TF Serving's shape.

MODEL=path/to/model.keras python kserve_app.py --http_port 9002
"""

import os

import keras
import numpy as np
from kserve import Model, ModelServer, model_server


class MnistModel(Model):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.model = None
        self.load()

    def load(self) -> bool:
        self.model = keras.models.load_model(os.environ["MODEL"])
        self.ready = True
        return self.ready

    def predict(self, payload: dict, headers: dict | None = None) -> dict:
        x = np.array(payload["instances"], dtype=np.float32)
        return {"predictions": self.model.predict(x, verbose=0).tolist()}


if __name__ == "__main__":
    args = model_server.parser.parse_args()
    ModelServer(http_port=args.http_port, workers=1, enable_grpc=False).start([MnistModel("mnist")])
