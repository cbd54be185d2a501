"""Write one version folder in the layout TF Serving loads, and check it before it is published.

A version folder holds::

    saved_model.pb, variables/          the SavedModel: signatures serving_default, predict_images
    assets.extra/tf_serving_warmup_requests   PredictionLog records TF Serving replays at load
    model.tflite                        the same model for LiteRT (and --prefer_tflite_model)
    model.keras                         the Keras model, for Keras users
    model_card.json, *.png              what was trained, how well, and pictures of it
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mnist_contract.model import (
    INPUT_NAME,
    MODEL_NAME,
    PREDICT_IMAGES,
    SERVING_DEFAULT,
    SIGNATURES,
    Signature,
)
from mnist_training.errors import ExportError

if TYPE_CHECKING:
    import keras

# LiteRT and TensorFlow use different kernels; beyond this they are not the same model.
PARITY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class ParityReport:
    images: int
    argmax_mismatches: int
    max_abs_diff: float


def write_saved_model(model: keras.Model, target: Path) -> None:
    """The SavedModel with both signatures of the fixed public interface (``mnist_contract``)."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    for signature in SIGNATURES.values():
        archive.add_endpoint(
            name=signature.name,
            fn=_endpoint(model, signature),
            input_signature=[
                tf.TensorSpec([None, *signature.input_shape], tf.float32, name=INPUT_NAME)
            ],
        )
    archive.write_out(str(target), verbose=False)


def _endpoint(model: keras.Model, signature: Signature) -> Callable[[Any], dict[str, Any]]:
    """The signature's function: its input reshaped to the model's [N,28,28,1], one output."""
    import tensorflow as tf

    def run(images: Any) -> dict[str, Any]:
        if signature.input_shape != SERVING_DEFAULT.input_shape:  # no reshape op when it is one
            images = tf.reshape(images, [-1, *SERVING_DEFAULT.input_shape])
        return {signature.output: model(images, training=False)}

    return run


def write_tflite(saved_model: Path, target: Path) -> None:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model), signature_keys=[SERVING_DEFAULT.name]
    )
    target.write_bytes(converter.convert())


def saved_model_predict(saved_model: Path, images: np.ndarray, batch: int = 1000) -> np.ndarray:
    """``serving_default`` of the exported SavedModel on float32 [N,28,28,1] images."""
    import tensorflow as tf

    fn = tf.saved_model.load(str(saved_model)).signatures[SERVING_DEFAULT.name]
    parts = [
        fn(**{INPUT_NAME: tf.constant(images[i : i + batch])})[SERVING_DEFAULT.output].numpy()
        for i in range(0, len(images), batch)
    ]
    return np.concatenate(parts)


def tflite_predict(tflite: Path, images: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tflite), num_threads=2)
    runner = interpreter.get_signature_runner(SERVING_DEFAULT.name)
    return np.asarray(runner(**{INPUT_NAME: images})[SERVING_DEFAULT.output])


def check_parity(reference: np.ndarray, candidate: np.ndarray) -> ParityReport:
    """Compare LiteRT's answers with the SavedModel's; raise when they are not the same model."""
    mismatches = int((reference.argmax(1) != candidate.argmax(1)).sum())
    max_diff = float(np.abs(reference - candidate).max())
    report = ParityReport(len(reference), mismatches, max_diff)
    if mismatches or max_diff > PARITY_TOLERANCE:
        raise ExportError(
            f"LiteRT model disagrees with the SavedModel on {len(reference)} test images: "
            f"{mismatches} different digits, max |Δp| = {max_diff:.2e} "
            f"(allowed: 0 and {PARITY_TOLERANCE:.0e}); nothing was published"
        )
    return report


def write_warmup_requests(target: Path, images: np.ndarray, labels: np.ndarray) -> int:
    """One ``PredictionLog`` per digit 0-9 (a real test image of each), both signatures.

    TF Serving replays these at load so the first real request does not pay for lazy
    initialisation; our gateway replays the same file before it reports ready.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    picks = [int(np.argmax(labels == d)) for d in range(10) if (labels == d).any()]
    shaped = images[picks].astype(np.float32)
    # One request per digit on the default signature, then all of them on the flat one.
    batches = [(SERVING_DEFAULT, shaped[i : i + 1]) for i in range(len(picks))]
    batches.append((PREDICT_IMAGES, shaped))
    requests: list[predict_pb2.PredictRequest] = []
    for signature, batch in batches:
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=MODEL_NAME, signature_name=signature.name)
        )
        request.inputs[INPUT_NAME].CopyFrom(
            tf.make_tensor_proto(batch.reshape(-1, *signature.input_shape))
        )
        requests.append(request)

    target.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(target)) as writer:
        for req in requests:
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=req)
            )
            writer.write(log.SerializeToString())
    return len(requests)
