"""The embedded default: the version's ``model.tflite`` run by LiteRT (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from mnist_contract.layout import TFLITE_FILE
from mnist_contract.model import INPUT_NAME, SERVING_DEFAULT
from mnist_serving.runtimes import Session


class LiteRTRuntime:
    name = "litert"

    def __init__(self, version_dir: Path, threads: int) -> None:
        self.path = version_dir / TFLITE_FILE
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no LiteRT model in this version folder")
        self.version = int(version_dir.name)
        self.threads = threads
        self._model = self.path.read_bytes()
        self.session()  # fail at load, not on the first request, if the flatbuffer is bad

    healthy = True

    async def close(self) -> None:
        pass

    def session(self) -> Session:
        interpreter = Interpreter(model_content=self._model, num_threads=self.threads)
        runner = interpreter.get_signature_runner(SERVING_DEFAULT.name)

        def run(images: np.ndarray) -> np.ndarray:
            return np.asarray(runner(**{INPUT_NAME: images})[SERVING_DEFAULT.output])

        return run
