"""Our TF-free protos have the official ones' names, packages and field numbers."""

from __future__ import annotations

from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    predict_pb2,
)

from mnist_contract.protos import tensorflow_serving_pb2 as ours


def test_our_protos_match_the_official_field_numbers() -> None:
    """Every field we declare exists in TF Serving's message with the same number and type."""
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2
    from tensorflow.core.protobuf import meta_graph_pb2
    from tensorflow_serving.apis import get_model_status_pb2 as status_pb2
    from tensorflow_serving.apis import model_pb2, prediction_log_pb2

    from mnist_contract.protos import tensorflow_pb2 as our_tf

    pairs = [
        (ours.ModelSpec, model_pb2.ModelSpec),
        (ours.PredictRequest, predict_pb2.PredictRequest),
        (ours.PredictResponse, predict_pb2.PredictResponse),
        (ours.GetModelMetadataRequest, get_model_metadata_pb2.GetModelMetadataRequest),
        (ours.GetModelMetadataResponse, get_model_metadata_pb2.GetModelMetadataResponse),
        (ours.SignatureDefMap, get_model_metadata_pb2.SignatureDefMap),
        (ours.GetModelStatusRequest, status_pb2.GetModelStatusRequest),
        (ours.GetModelStatusResponse, status_pb2.GetModelStatusResponse),
        (ours.ModelVersionStatus, status_pb2.ModelVersionStatus),
        (ours.PredictionLog, prediction_log_pb2.PredictionLog),
        (ours.PredictLog, prediction_log_pb2.PredictLog),
        (our_tf.TensorProto, tensor_pb2.TensorProto),
        (our_tf.TensorShapeProto, tensor_shape_pb2.TensorShapeProto),
        (our_tf.TensorInfo, meta_graph_pb2.TensorInfo),
        (our_tf.SignatureDef, meta_graph_pb2.SignatureDef),
    ]
    for mine, official in pairs:
        assert mine.DESCRIPTOR.full_name == official.DESCRIPTOR.full_name
        theirs = official.DESCRIPTOR.fields_by_name
        for field in mine.DESCRIPTOR.fields:
            assert field.name in theirs, f"{mine.DESCRIPTOR.full_name}.{field.name}"
            assert field.number == theirs[field.name].number, (
                f"{mine.DESCRIPTOR.full_name}.{field.name}"
            )
            assert field.type == theirs[field.name].type, (
                f"{mine.DESCRIPTOR.full_name}.{field.name}"
            )
    for name, number in our_tf.DataType.items():
        assert (
            tensor_pb2.TensorProto.DESCRIPTOR.fields_by_name["dtype"]
            .enum_type.values_by_name[name]
            .number
            == number
        )
