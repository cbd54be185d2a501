"""Generated bad input against a real gateway: property-based (hypothesis) bodies for REST (the
TF Serving, digits and V2 APIs, V2's binary framing included) and gRPC, and random bytes as
protobuf (schema-driven requests are in ``test_openapi.py``). The
property: no 5xx / INTERNAL / UNKNOWN, every refusal a 4xx with a JSON ``error`` (or a gRPC
status with a message), and the server still answers afterwards.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import grpc
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnist_contract.protos import digits_pb2
from mnist_contract.protos import open_inference_pb2 as v2_pb
from mnist_contract.protos import tensorflow_pb2 as tf_pb
from mnist_contract.protos import tensorflow_serving_pb2 as tfs
from tests.helpers.processes import Server, start_gateway, stop_gateway

# Examples per property; the benchmark (benchmarks/reliability.py) runs more.
EXAMPLES = int(os.environ.get("MNIST_FUZZ_EXAMPLES", "400"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # nothing written into the work tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
GRPC_FAILURES = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}


@pytest.fixture(scope="module")
def target(model_dir) -> Iterator[Server]:
    # A low rate of requests per key would refuse the fuzzer, not its input: no keys here.
    srv = start_gateway(model_dir, "--version-labels", '{"stable": 1}')
    yield srv
    stop_gateway(srv)


@pytest.fixture(scope="module")
def http(target: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=target.url, timeout=30) as client:
        yield client


def check(response: httpx.Response, counter: dict[str, int]) -> None:
    counter["requests"] = counter.get("requests", 0) + 1
    request = response.request
    assert response.status_code < 500 or response.status_code == 503, (
        response.status_code,
        response.text[:300],
        f"{request.method} {request.url}",
        dict(request.headers),
        request.content[:300],
    )
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error, str) and error and "Traceback" not in error


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=60,
)
# Pixel-like arrays: right and wrong shapes, ints, floats, out-of-range values.
pixel_rows = st.lists(
    st.lists(st.integers(-300, 300) | st.floats(-2, 2), min_size=0, max_size=30),
    min_size=0,
    max_size=30,
)
predict_paths = st.sampled_from(
    [
        "/v1/models/mnist:predict",
        "/v1/models/mnist/versions/1:predict",
        "/v1/models/mnist/labels/stable:predict",
        "/v1/models/mnist/versions/0:predict",
        "/v1/models/other:predict",
        "/v1/models/mnist/labels/none:predict",
    ]
)


def test_predict_fuzz(http: httpx.Client, figures) -> None:
    counter: dict[str, int] = {}

    @FUZZ
    @given(
        path=predict_paths,
        body=st.one_of(
            json_values,
            st.fixed_dictionaries(
                {},
                optional={
                    "instances": st.one_of(json_values, st.lists(pixel_rows, max_size=3)),
                    "inputs": st.one_of(
                        json_values, st.dictionaries(st.just("images"), json_values)
                    ),
                    "signature_name": st.one_of(
                        st.sampled_from(["serving_default", "predict_images"]), json_values
                    ),
                },
            ),
        ),
    )
    def run(path: str, body: object) -> None:
        check(http.post(path, content=json.dumps(body)), counter)

    run()
    assert counter["requests"] >= EXAMPLES // 2
    figures.setdefault("fuzz", {})["rest_predict_hypothesis"] = counter["requests"]


def test_classify_fuzz(http: httpx.Client, figures) -> None:
    counter: dict[str, int] = {}
    content_types = st.sampled_from(
        [
            "application/json",
            "image/png",
            "image/jpeg",
            "application/octet-stream",
            "multipart/form-data; boundary=x",
            "text/plain",
            "",
        ]
    )
    json_bodies = st.fixed_dictionaries(
        {
            "images": st.one_of(
                json_values,
                st.lists(pixel_rows, max_size=3),
                st.lists(st.fixed_dictionaries({"b64": st.text(max_size=40)}), max_size=3),
            )
        },
        optional={"top_k": json_values, "return_preprocessed": json_values, "version": json_values},
    ).map(lambda d: json.dumps(d).encode())
    png_prefix = b"\x89PNG\r\n\x1a\n"

    @FUZZ
    @given(
        content_type=content_types,
        body=st.one_of(
            json_bodies, st.binary(max_size=3000), st.binary(max_size=200).map(png_prefix.__add__)
        ),
        query=st.dictionaries(
            st.sampled_from(["top_k", "version", "return_preprocessed"]),
            st.text(max_size=6),
            max_size=2,
        ),
    )
    def run(content_type: str, body: bytes, query: dict[str, str]) -> None:
        headers = {"Content-Type": content_type} if content_type else {}
        check(
            http.post("/v1/digits:classify", content=body, headers=headers, params=query), counter
        )

    run()
    assert counter["requests"] >= EXAMPLES // 2
    figures.setdefault("fuzz", {})["rest_classify_hypothesis"] = counter["requests"]


# -- the Open Inference Protocol (V2) over REST: JSON and binary bodies -------------------------

v2_datatypes = st.sampled_from(["UINT8", "FP32", "FP64", "BYTES", "INT8", ""]) | st.text(max_size=5)
v2_shapes = st.one_of(
    st.lists(st.integers(-2, 2**40), max_size=5),
    st.tuples(st.integers(0, 3), st.sampled_from([784, 28, 783])).map(list),
    json_values,
)
v2_parameters = st.one_of(
    json_values,
    st.dictionaries(
        st.sampled_from(
            [
                "binary_data_size",
                "binary_data_output",
                "binary_data",
                "timeout",
                "classification",
                "signature_name",
                "shared_memory_region",
                "sequence_id",
                "priority",
            ]
        ),
        st.one_of(json_values, st.integers(-5, 5000)),
        max_size=3,
    ),
)
v2_tensors = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["images", "x"]) | json_values,
        "datatype": v2_datatypes,
        "shape": v2_shapes,
        "data": st.one_of(json_values, pixel_rows, st.lists(st.integers(-5, 300), max_size=1600)),
        "parameters": v2_parameters,
    },
)
v2_documents = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "inputs": st.one_of(json_values, st.lists(v2_tensors, max_size=2)),
            "outputs": st.one_of(
                json_values,
                st.lists(
                    st.fixed_dictionaries(
                        {"name": st.sampled_from(["probabilities", "scores"]) | json_values},
                        optional={"parameters": v2_parameters},
                    ),
                    max_size=2,
                ),
            ),
            "id": json_values,
            "parameters": v2_parameters,
        },
    ),
)
v2_paths = st.sampled_from(
    [
        "/v2/models/mnist/infer",
        "/v2/models/mnist/versions/1/infer",
        "/v2/models/mnist/versions/stable/infer",
        "/v2/models/mnist/versions/0/infer",
        "/v2/models/other/infer",
    ]
)


def test_v2_infer_fuzz(http: httpx.Client, figures) -> None:
    """JSON bodies, and binary ones: a JSON header, a tail of bytes, and a header length that
    is right, off by some bytes, missing or not a number."""
    counter: dict[str, int] = {}

    @FUZZ
    @given(
        path=v2_paths,
        document=v2_documents,
        tail=st.one_of(st.just(b""), st.binary(max_size=3200)),
        length=st.one_of(
            st.none(), st.integers(-3, 3), st.text("0123456789x-+.e", min_size=1, max_size=6)
        ),
        encoding=st.sampled_from(["", "gzip", "deflate", "br"]),
    )
    def run(path: str, document: object, tail: bytes, length: object, encoding: str) -> None:
        header = json.dumps(document).encode()
        headers = {"Content-Encoding": encoding} if encoding else {}
        if isinstance(length, int):
            headers["Inference-Header-Content-Length"] = str(len(header) + length)
        elif isinstance(length, str):
            headers["Inference-Header-Content-Length"] = length
        check(http.post(path, content=header + tail, headers=headers), counter)

    run()
    assert counter["requests"] >= EXAMPLES // 2
    figures.setdefault("fuzz", {})["rest_v2_infer_hypothesis"] = counter["requests"]


# -- gRPC ------------------------------------------------------------------------------------

tensors = st.builds(
    lambda dtype, dims, content, floats, ints: _tensor(dtype, dims, content, floats, ints),
    dtype=st.sampled_from([0, 1, 2, 3, 4, 7, 9, 19, 99]),
    dims=st.lists(st.integers(-3, 2**40), max_size=5),
    content=st.binary(max_size=4000),
    floats=st.lists(st.floats(width=32), max_size=40),
    ints=st.lists(st.integers(-(2**31), 2**31 - 1), max_size=20),
)


def _tensor(
    dtype: int, dims: list[int], content: bytes, floats: list[float], ints: list[int]
) -> tf_pb.TensorProto:
    tensor = tf_pb.TensorProto(dtype=dtype, tensor_content=content, float_val=floats, int_val=ints)  # type: ignore[arg-type]
    tensor.tensor_shape.dim.extend(tf_pb.TensorShapeProto.Dim(size=d) for d in dims)
    return tensor


def _spec(name: str, version: int | None, label: str | None, signature: str) -> tfs.ModelSpec:
    spec = tfs.ModelSpec(name=name, signature_name=signature)
    if version is not None:
        spec.version.value = version
    elif label is not None:
        spec.version_label = label
    return spec


specs = st.builds(
    _spec,
    name=st.sampled_from(["mnist", "", "other"]) | st.text(max_size=5),
    version=st.none() | st.integers(-(2**63), 2**63 - 1),
    label=st.none() | st.sampled_from(["stable", "canary"]) | st.text(max_size=5),
    signature=st.sampled_from(["", "serving_default", "predict_images"]) | st.text(max_size=6),
)
predict_requests = st.builds(
    lambda spec, inputs, filters: tfs.PredictRequest(
        model_spec=spec, inputs=inputs, output_filter=filters
    ),
    spec=specs,
    inputs=st.dictionaries(
        st.sampled_from(["images", "x"]) | st.text(max_size=4), tensors, max_size=2
    ),
    filters=st.lists(
        st.sampled_from(["probabilities", "scores"]) | st.text(max_size=4), max_size=2
    ),
)
classify_requests = st.builds(
    lambda images, top_k, pre, version: digits_pb2.ClassifyRequest(
        images=images, top_k=top_k, return_preprocessed=pre, version=version
    ),
    images=st.lists(
        st.builds(lambda raw: digits_pb2.Image(raw=raw), st.binary(max_size=900))
        | st.builds(lambda enc: digits_pb2.Image(encoded=enc), st.binary(max_size=300))
        | st.just(digits_pb2.Image()),
        max_size=4,
    ),
    top_k=st.integers(0, 2**31 - 1),
    pre=st.booleans(),
    version=st.text(max_size=6),
)


def _v2_parameters(values: dict[str, object]) -> dict[str, v2_pb.InferParameter]:
    made = {}
    for name, value in values.items():
        if isinstance(value, bool):
            made[name] = v2_pb.InferParameter(bool_param=value)
        elif isinstance(value, int):
            made[name] = v2_pb.InferParameter(int64_param=value)
        else:
            made[name] = v2_pb.InferParameter(string_param=str(value))
    return made


grpc_parameters = st.dictionaries(
    st.sampled_from(
        [
            "binary_data_output",
            "timeout",
            "signature_name",
            "classification",
            "shared_memory_region",
            "sequence_id",
        ]
    )
    | st.text(max_size=4),
    st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=6),
    max_size=3,
).map(_v2_parameters)
v2_inputs = st.builds(
    lambda name, datatype, shape, parameters, floats, uints: (
        v2_pb.ModelInferRequest.InferInputTensor(
            name=name,
            datatype=datatype,
            shape=shape,
            parameters=parameters,
            contents=v2_pb.InferTensorContents(fp32_contents=floats, uint_contents=uints),
        )
    ),
    name=st.sampled_from(["images", "x", ""]),
    datatype=st.sampled_from(["UINT8", "FP32", "BYTES", "INT64"]) | st.text(max_size=4),
    shape=st.lists(st.integers(-(2**63), 2**63 - 1), max_size=5)
    | st.just([1, 784])
    | st.just([2, 28, 28]),
    parameters=grpc_parameters,
    floats=st.lists(st.floats(width=32), max_size=40),
    uints=st.lists(st.integers(0, 2**32 - 1), max_size=40),
)
v2_infer_requests = st.builds(
    lambda model, version, inputs, raw, outputs, parameters: v2_pb.ModelInferRequest(
        model_name=model,
        model_version=version,
        inputs=inputs,
        raw_input_contents=raw,
        outputs=[
            v2_pb.ModelInferRequest.InferRequestedOutputTensor(name=o, parameters=p)
            for o, p in outputs
        ],
        parameters=parameters,
    ),
    model=st.sampled_from(["mnist", "", "other"]),
    version=st.sampled_from(["", "1", "0", "stable", "-1", "99999999999999999999"])
    | st.text(max_size=4),
    inputs=st.lists(v2_inputs, max_size=2),
    raw=st.lists(st.binary(max_size=1600) | st.just(bytes(784)), max_size=2),
    outputs=st.lists(
        st.tuples(st.sampled_from(["probabilities", "scores", ""]), grpc_parameters), max_size=2
    ),
    parameters=grpc_parameters,
)
METHODS = {
    "/tensorflow.serving.PredictionService/Predict": predict_requests,
    "/tensorflow.serving.PredictionService/GetModelMetadata": st.builds(
        lambda spec, fields: tfs.GetModelMetadataRequest(model_spec=spec, metadata_field=fields),
        specs,
        st.lists(st.sampled_from(["signature_def"]) | st.text(max_size=5), max_size=2),
    ),
    "/tensorflow.serving.ModelService/GetModelStatus": st.builds(
        lambda spec: tfs.GetModelStatusRequest(model_spec=spec), specs
    ),
    "/mnist.v1.DigitClassifier/Classify": classify_requests,
    "/inference.GRPCInferenceService/ModelInfer": v2_infer_requests,
    "/inference.GRPCInferenceService/ModelReady": st.builds(
        lambda name, version: v2_pb.ModelReadyRequest(name=name, version=version),
        st.sampled_from(["mnist", "", "x"]),
        st.text(max_size=6),
    ),
    "/inference.GRPCInferenceService/ModelMetadata": st.builds(
        lambda name, version: v2_pb.ModelMetadataRequest(name=name, version=version),
        st.sampled_from(["mnist", "", "x"]),
        st.text(max_size=6),
    ),
}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_grpc_message_fuzz(target: Server, method: str, figures) -> None:
    counter = {"requests": 0}
    with grpc.insecure_channel(target.grpc) as channel:
        call = channel.unary_unary(method, request_serializer=lambda m: m.SerializeToString())

        @FUZZ
        @given(message=METHODS[method])
        def well_formed(message: object) -> None:
            _expect_clean(call, message, counter)

        @settings(FUZZ, max_examples=max(10, EXAMPLES // 4))
        @given(data=st.binary(max_size=600))
        def random_bytes(data: bytes) -> None:
            raw = channel.unary_unary(method)  # no serializer: the bytes go as they are
            _expect_clean(raw, data, counter)

        well_formed()
        random_bytes()
    assert counter["requests"] >= EXAMPLES // 2
    figures.setdefault("fuzz", {})[f"grpc {method}"] = counter["requests"]


def _expect_clean(
    call: grpc.UnaryUnaryMultiCallable, message: object, counter: dict[str, int]
) -> None:
    counter["requests"] += 1
    try:
        call(message, timeout=30)
    except grpc.RpcError as exc:
        assert exc.code() not in GRPC_FAILURES, (exc.code(), exc.details())
        assert exc.details(), exc.code()
