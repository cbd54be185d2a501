"""Write one version folder in the layout TF Serving loads, and check it before it is published.

A version folder holds::

    saved_model.pb, variables/          the SavedModel: signatures serving_default, predict_images
    assets.extra/tf_serving_warmup_requests   PredictionLog records TF Serving replays at load
    model.tflite                        the same model for LiteRT (and --prefer_tflite_model)
    model_int8.tflite                   the same model quantised to int8, when it passed its checks
    model.keras                         the Keras model, for Keras users
    drift_reference.json                what held-out training digits look like to the model
    model_card.json, *.png              what was trained, how well, and pictures of it
"""

from __future__ import annotations

import warnings
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
from mnist_training.quiet import native_stderr_silenced

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


def write_tflite_int8(saved_model: Path, target: Path, representative: np.ndarray) -> None:
    """Post-training quantisation: weights and activations in int8, their ranges measured on
    ``representative`` training digits, float32 input and output as the signature has them.
    The last softmax stays in float: quantised, its probabilities come in steps of 1/256 and
    no longer sum to 1 (nor keep the calibration); in float they do, at no measurable cost."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model), signature_keys=[SERVING_DEFAULT.name]
    )
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
        tf.lite.OpsSet.TFLITE_BUILTINS,  # the float softmax
    ]

    def samples() -> Any:
        for i in range(len(representative)):
            yield {INPUT_NAME: representative[i : i + 1]}

    converter.representative_dataset = samples
    float_softmax = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=["SOFTMAX"])
    # The quantiser runs TensorFlow's own (deprecated) interpreter over the samples and prints
    # its settings on file descriptor 2; neither says anything to the job's user.
    with native_stderr_silenced(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "(?s).*tf.lite.Interpreter is deprecated")
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=samples, debug_options=float_softmax
        )
        target.write_bytes(debugger.get_nondebug_quantized_model())


@dataclass(frozen=True)
class Int8Check:
    """How the int8 file answers beside the SavedModel on the test set, and whether that is
    close enough to publish it."""

    images: int
    same_digit: float  # share of test images both answer with the same digit
    accuracy_fp32: float
    accuracy_int8: float
    ece_fp32: float
    ece_int8: float
    published: bool
    reason: str


# What the int8 file must keep of the SavedModel to be published beside it.
INT8_SAME_DIGIT = 0.999
INT8_ACCURACY_DROP = 0.001
INT8_ECE_RISE = 0.005


def check_int8(
    reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray, calibrated: bool
) -> Int8Check:
    """The int8 file's answers against the SavedModel's on the test set: the same digit on
    ≥ 99.9% of images, accuracy within 0.1 point, and (when the model is calibrated) an ECE
    within 0.005 of the float model's."""
    from mnist_training.calibrate import expected_calibration_error

    same = float((reference.argmax(1) == candidate.argmax(1)).mean())
    acc_fp32 = float((reference.argmax(1) == labels).mean())
    acc_int8 = float((candidate.argmax(1) == labels).mean())
    ece_fp32 = expected_calibration_error(reference, labels)
    ece_int8 = expected_calibration_error(candidate, labels)
    problems = []
    if same < INT8_SAME_DIGIT:
        problems.append(f"same digit on {same:.2%} of test images (needs {INT8_SAME_DIGIT:.1%})")
    if acc_int8 < acc_fp32 - INT8_ACCURACY_DROP:
        problems.append(f"accuracy {acc_int8:.4f} against {acc_fp32:.4f} (within 0.1 point)")
    if calibrated and ece_int8 > ece_fp32 + INT8_ECE_RISE:
        problems.append(f"ECE {ece_int8:.4f} against {ece_fp32:.4f} (within {INT8_ECE_RISE})")
    return Int8Check(
        len(labels),
        round(same, 6),
        round(acc_fp32, 6),
        round(acc_int8, 6),
        round(ece_fp32, 5),
        round(ece_int8, 5),
        not problems,
        "; ".join(problems) or "every check passed",
    )


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
