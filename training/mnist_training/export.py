"""Write one version folder in the layout TF Serving loads, and check it before it is published.

A version folder holds::

    saved_model.pb, variables/          the SavedModel: signatures serving_default, predict_images
    assets.extra/tf_serving_warmup_requests   PredictionLog records TF Serving replays at load
    model.tflite                        the same model for LiteRT (and --prefer_tflite_model)
    model.keras                         the Keras model, for Keras users
    model_card.json, *.png              what was trained, how well, and pictures of it
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mnist_training.errors import ExportError

if TYPE_CHECKING:
    import keras

SERVING_DEFAULT = "serving_default"
PREDICT_IMAGES = "predict_images"
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
TFLITE_FILE = "model.tflite"
KERAS_FILE = "model.keras"
# LiteRT and TensorFlow use different kernels; beyond this they are not the same model.
PARITY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class ParityReport:
    images: int
    argmax_mismatches: int
    max_abs_diff: float


def write_saved_model(model: keras.Model, target: Path) -> None:
    """The SavedModel with both signatures of the fixed public interface."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name=SERVING_DEFAULT,
        fn=lambda images: {"probabilities": model(images, training=False)},
        input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32, name="images")],
    )
    # The classic TF Serving MNIST example's contract: flat 784-pixel rows in, "scores" out.
    archive.add_endpoint(
        name=PREDICT_IMAGES,
        fn=lambda images: {"scores": model(tf.reshape(images, [-1, 28, 28, 1]), training=False)},
        input_signature=[tf.TensorSpec([None, 784], tf.float32, name="images")],
    )
    archive.write_out(str(target), verbose=False)


def write_tflite(saved_model: Path, target: Path) -> None:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model), signature_keys=[SERVING_DEFAULT]
    )
    target.write_bytes(converter.convert())


def saved_model_predict(saved_model: Path, images: np.ndarray, batch: int = 1000) -> np.ndarray:
    """``serving_default`` of the exported SavedModel on float32 [N,28,28,1] images."""
    import tensorflow as tf

    fn = tf.saved_model.load(str(saved_model)).signatures[SERVING_DEFAULT]
    parts = [
        fn(images=tf.constant(images[i : i + batch]))["probabilities"].numpy()
        for i in range(0, len(images), batch)
    ]
    return np.concatenate(parts)


def tflite_predict(tflite: Path, images: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tflite), num_threads=2)
    runner = interpreter.get_signature_runner(SERVING_DEFAULT)
    return np.asarray(runner(images=images)["probabilities"])


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
    requests: list[predict_pb2.PredictRequest] = []
    for i in picks:
        image = images[i : i + 1].astype(np.float32)
        req = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name="mnist", signature_name=SERVING_DEFAULT)
        )
        req.inputs["images"].CopyFrom(tf.make_tensor_proto(image.reshape(1, 28, 28, 1)))
        requests.append(req)
    flat = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name="mnist", signature_name=PREDICT_IMAGES)
    )
    batch = images[picks].astype(np.float32).reshape(len(picks), 784)
    flat.inputs["images"].CopyFrom(tf.make_tensor_proto(batch))
    requests.append(flat)

    target.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(target)) as writer:
        for req in requests:
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=req)
            )
            writer.write(log.SerializeToString())
    return len(requests)
