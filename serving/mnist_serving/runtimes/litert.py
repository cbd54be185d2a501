"""The embedded default: the version's LiteRT file run by LiteRT (no TensorFlow): the int8 one
(``model_int8.tflite``, written by the training job only when it answers like the SavedModel)
when asked for and present, else the float one (``model.tflite``)."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from mnist_contract.layout import TFLITE_FILE, TFLITE_INT8_FILE
from mnist_contract.model import INPUT_NAME, SERVING_DEFAULT
from mnist_serving.runtimes.runtime import Session

log = logging.getLogger(__name__)


@contextlib.contextmanager
def native_stderr_logged(logger: logging.Logger) -> Iterator[None]:
    """Send what native code writes on file descriptor 2 meanwhile (LiteRT's "Created
    TensorFlow Lite XNNPACK delegate" line) to ``logger``, so a JSON log stays JSON. A file,
    not a pipe: a pipe nobody reads yet would block a chatty writer."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode(errors="replace").splitlines():
                if line.strip():
                    logger.info(line.removeprefix("INFO: ").strip())


class LiteRTRuntime:
    name = "litert"

    def __init__(self, version_dir: Path, threads: int, precision: str = "fp32") -> None:
        self.precision = "fp32"
        self.path = version_dir / TFLITE_FILE
        if precision == "int8":
            if (version_dir / TFLITE_INT8_FILE).is_file():
                self.precision, self.path = "int8", version_dir / TFLITE_INT8_FILE
            else:
                log.info("%s has no checked int8 model; serving its float one", version_dir)
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
        with native_stderr_logged(log):
            interpreter = Interpreter(model_content=self._model, num_threads=self.threads)
            runner = interpreter.get_signature_runner(SERVING_DEFAULT.name)
            # LiteRT makes its XNNPACK delegate (and says so on stderr) at the first call.
            runner(**{INPUT_NAME: np.zeros((1, *SERVING_DEFAULT.input_shape), np.float32)})

        def run(images: np.ndarray) -> np.ndarray:
            return np.asarray(runner(**{INPUT_NAME: images})[SERVING_DEFAULT.output])

        return run
