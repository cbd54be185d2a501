"""The SDK without sockets: encoding, decoding, every error mapping, the retry policy."""

from __future__ import annotations

import io
import json
import random

import grpc
import httpx
import numpy as np
import pytest
from PIL import Image

import mnist_client
from mnist_client import (
    AsyncMnistClient,
    ConnectionFailed,
    InvalidInput,
    MnistClient,
    MnistError,
    NotFound,
    Overloaded,
    RequestTimeout,
    ServerError,
    Unauthenticated,
)
from mnist_client._codec import to_items
from mnist_client._errors import from_grpc, from_http
from mnist_contract.protos import digits_pb2


def test_public_api_is_what_we_mean_it_to_be() -> None:
    assert sorted(mnist_client.__all__) == sorted(
        [
            "AsyncMnistClient",
            "BaseClient",
            "Candidate",
            "ConnectionFailed",
            "ImageInput",
            "InvalidInput",
            "MnistClient",
            "MnistError",
            "NotFound",
            "Overloaded",
            "Prediction",
            "RequestTimeout",
            "ServerError",
            "Unauthenticated",
        ]
    )
    for name in mnist_client.__all__:
        assert getattr(mnist_client, name) is not None
    public = {n for n in dir(mnist_client) if not n.startswith("_")}
    assert public - set(mnist_client.__all__) <= {
        "protos",
        "preprocess",
        "tensors",
        "cli",
        "loadtest",
        "annotations",
    }


# -- encoding --------------------------------------------------------------------------------


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("array", "count"),
    [
        (np.zeros((28, 28), np.uint8), 1),
        (np.zeros((3, 28, 28), np.uint8), 3),
        (np.zeros((2, 784), np.uint8), 2),
        (np.zeros((4, 28, 28, 1), np.float32), 4),
        (np.ones((2, 28, 28), np.float64), 2),
        (np.full((1, 28, 28), 255, np.int64), 1),
    ],
)
def test_every_array_shape_becomes_uint8_frames(array, count) -> None:
    items = to_items(array)
    assert len(items) == count
    assert all(
        i.frame is not None and i.frame.shape == (28, 28) and i.frame.dtype == np.uint8
        for i in items
    )


def test_float_pixels_are_scaled_and_ranges_checked() -> None:
    (item,) = to_items(np.full((28, 28), 0.5))
    assert item.frame is not None and item.frame.max() == 128
    with pytest.raises(InvalidInput, match=r"float pixels must be 0\.0-1\.0"):
        to_items(np.full((28, 28), 2.0))
    with pytest.raises(InvalidInput, match="integer pixels must be 0-255"):
        to_items(np.full((28, 28), 300))
    with pytest.raises(InvalidInput, match="NaN"):
        to_items(np.full((28, 28), np.nan))
    with pytest.raises(InvalidInput, match=r"shape \(5, 5\)"):
        to_items(np.zeros((5, 5)))


def test_images_bytes_paths_and_lists(tmp_path) -> None:
    png = _png(np.zeros((40, 40), np.uint8))
    path = tmp_path / "d.png"
    path.write_bytes(png)
    items = to_items(
        [png, str(path), path, Image.new("L", (30, 30)), np.zeros((2, 28, 28), np.uint8)]
    )
    assert [i.encoded is not None for i in items] == [True, True, True, True, False, False]
    with pytest.raises(InvalidInput, match=r"input 1: .*missing\.png: cannot read"):
        to_items([png, tmp_path / "missing.png"])
    with pytest.raises(InvalidInput, match="not an image file in a supported format"):
        to_items(b"hello")
    webp = tmp_path / "d.webp"
    Image.new("L", (30, 30), 255).save(webp, "WEBP")
    tiff = tmp_path / "d.tiff"
    Image.new("I;16", (30, 30)).save(tiff, "TIFF")
    assert all(i.encoded for i in to_items([webp, tiff, webp.read_bytes()]))
    with pytest.raises(InvalidInput, match="cannot classify a dict"):
        to_items({"a": 1})  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="no images"):
        to_items([])


# -- REST over a mock transport ----------------------------------------------------------------


def _digits_answer(n: int, version: int = 3) -> dict:
    probs = np.eye(10)[[i % 10 for i in range(n)]] * 0.9 + 0.01
    return {
        "model_name": "mnist",
        "model_version": version,
        "predictions": [
            {"digit": i % 10, "confidence": 0.91, "probabilities": p.tolist()}
            for i, p in enumerate(probs)
        ],
    }


def test_rest_request_encoding_and_chunking() -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        n = (
            len(request.content) // 784
            if request.headers["content-type"] == "application/octet-stream"
            else len(json.loads(request.content)["images"])
        )
        return httpx.Response(200, json=_digits_answer(n))

    client = MnistClient(
        "http://gateway:8080",
        http_transport=httpx.MockTransport(handler),
        chunk_size=4,
        api_key="k1",
    )
    result = client.classify(np.zeros((10, 28, 28), np.uint8), top_k=2)
    assert len(result) == 10 and [len(r.top_k) for r in result] == [2] * 10
    assert [len(r.content) // 784 for r in seen] == [4, 4, 2]
    assert seen[0].url.path == "/v1/digits:classify" and seen[0].url.params["top_k"] == "2"
    assert seen[0].headers["authorization"] == "Bearer k1"
    client.classify([_png(np.zeros((30, 30), np.uint8)), np.zeros((28, 28), np.uint8)])
    body = json.loads(seen[-1].content)
    assert set(body["images"][0]) == {"b64"} and len(body["images"][1]) == 28
    assert (
        result[1].digit == 1 and result[1].model_version == 3 and len(result[1].probabilities) == 10
    )


def test_tfserving_api_sends_instances_and_reads_predictions() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        instances = np.array(json.loads(request.content)["instances"])
        assert request.url.path == "/v1/models/mnist:predict" and instances.shape == (2, 28, 28, 1)
        assert instances.max() <= 1.0
        return httpx.Response(200, json={"predictions": np.eye(10)[[4, 2]].tolist()})

    client = MnistClient(
        "http://tfs:8501", api="tfserving", http_transport=httpx.MockTransport(handler)
    )
    big = np.asarray(Image.fromarray(np.pad(np.full((20, 8), 255, np.uint8), 40)).convert("L"))
    result = client.classify([np.zeros((28, 28), np.uint8), _png(big)])
    assert [r.digit for r in result] == [4, 2] and result[0].model_version is None


@pytest.mark.parametrize("binary_answer", [True, False])
def test_v2_sends_binary_fp32_and_reads_binary_or_json_answers(binary_answer) -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        length = int(request.headers["inference-header-content-length"])
        header = json.loads(request.content[:length])
        (tensor,) = header["inputs"]
        images = np.frombuffer(request.content[length:], "<f4").reshape(tensor["shape"])
        assert tensor["datatype"] == "FP32" and images.shape[1:] == (28, 28, 1)
        probabilities = np.eye(10, dtype=np.float32)[[3] * len(images)]
        if not binary_answer:  # a server may answer JSON even when binary is asked for
            doc = {
                "model_name": "mnist",
                "model_version": "7",
                "outputs": [
                    {
                        "name": "probabilities",
                        "datatype": "FP32",
                        "shape": [len(images), 10],
                        "data": probabilities.ravel().tolist(),
                    }
                ],
            }
            return httpx.Response(200, json=doc)
        data = probabilities.tobytes()
        doc = {
            "model_name": "mnist",
            "model_version": "stable",
            "outputs": [
                {
                    "name": "probabilities",
                    "datatype": "FP32",
                    "shape": [len(images), 10],
                    "parameters": {"binary_data_size": len(data)},
                }
            ],
        }
        encoded = json.dumps(doc).encode()
        headers = {"Inference-Header-Content-Length": str(len(encoded))}
        return httpx.Response(200, content=encoded + data, headers=headers)

    client = MnistClient(
        "http://triton:8000",
        api="v2",
        model="digits",
        chunk_size=4,
        http_transport=httpx.MockTransport(handler),
    )
    result = client.classify(np.full((6, 28, 28), 255, np.uint8), top_k=1)
    assert [r.digit for r in result] == [3] * 6 and [len(r.content) for r in seen[:1]] > [4 * 3136]
    assert seen[0].url.path == "/v2/models/digits/infer"
    assert {r.model_version for r in result} == ({None} if binary_answer else {7})


def test_v2_answers_that_make_no_sense_are_server_errors() -> None:
    for body, headers in (
        (b"{}", {}),
        (b'{"outputs": []}', {}),
        (b'{"outputs": []}', {"Inference-Header-Content-Length": "99"}),
    ):
        client = MnistClient(
            "http://triton:8000",
            api="v2",
            http_transport=httpx.MockTransport(
                lambda _r, b=body, h=headers: httpx.Response(200, content=b, headers=h)
            ),
        )
        with pytest.raises(ServerError, match="unexpected V2 answer"):
            client.classify(np.zeros((28, 28), np.uint8))


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, InvalidInput),
        (401, Unauthenticated),
        (404, NotFound),
        (413, InvalidInput),
        (415, InvalidInput),
        (429, Overloaded),
        (500, ServerError),
        (502, ServerError),
        (503, Overloaded),
        (504, RequestTimeout),
    ],
)
def test_every_http_status_maps_to_its_error(status, kind) -> None:
    error = from_http(status, b'{"error": "named problem"}', "2")
    assert type(error) is kind and error.status == status and "named problem" in error.message
    assert error.retry_after == 2.0


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("INVALID_ARGUMENT", InvalidInput),
        ("NOT_FOUND", NotFound),
        ("UNAUTHENTICATED", Unauthenticated),
        ("RESOURCE_EXHAUSTED", Overloaded),
        ("UNAVAILABLE", Overloaded),
        ("DEADLINE_EXCEEDED", RequestTimeout),
        ("INTERNAL", ServerError),
        ("UNKNOWN", ServerError),
    ],
)
def test_every_grpc_code_maps_to_its_error(code, kind) -> None:
    error = from_grpc(code, "details here", "1")
    assert type(error) is kind and error.grpc_code == code and "details here" in error.message
    assert issubclass(kind, MnistError)


def test_transport_failures_become_connection_and_timeout_errors() -> None:
    def refuse(request):
        raise httpx.ConnectError("refused")

    def slow(request):
        raise httpx.ReadTimeout("slow")

    with pytest.raises(ConnectionFailed, match="cannot reach"):
        MnistClient("http://x:1", http_transport=httpx.MockTransport(refuse), retries=0).classify(
            np.zeros((28, 28))
        )
    with pytest.raises(RequestTimeout, match="no answer"):
        MnistClient("http://x:1", http_transport=httpx.MockTransport(slow)).classify(
            np.zeros((28, 28))
        )


# -- the retry policy --------------------------------------------------------------------------


class FlakyServer:
    def __init__(self, failures: int, status: int = 503, retry_after: str | None = None) -> None:
        self.failures, self.status, self.retry_after, self.calls = failures, status, retry_after, 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls <= self.failures:
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return httpx.Response(self.status, json={"error": "queue is full"}, headers=headers)
        return httpx.Response(200, json=_digits_answer(1))


def test_a_server_that_fails_twice_then_answers(monkeypatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr("mnist_client._client.time.sleep", sleeps.append)
    server = FlakyServer(failures=2)
    client = MnistClient(
        "http://x", http_transport=httpx.MockTransport(server), backoff=0.1, rng=random.Random(1)
    )
    assert client.classify(np.zeros((28, 28)))[0].digit == 0
    assert server.calls == 3 and len(sleeps) == 2
    assert 0.05 <= sleeps[0] <= 0.1 and 0.1 <= sleeps[1] <= 0.2  # exponential, with jitter


def test_a_server_that_always_answers_503_with_retry_after(monkeypatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr("mnist_client._client.time.sleep", sleeps.append)
    server = FlakyServer(failures=100, retry_after="3")
    client = MnistClient(
        "http://x", http_transport=httpx.MockTransport(server), retries=3, backoff=0.01
    )
    with pytest.raises(Overloaded) as info:
        client.classify(np.zeros((28, 28)))
    assert info.value.status == 503 and info.value.retry_after == 3.0
    assert server.calls == 4 and sleeps == [
        3.0,
        3.0,
        3.0,
    ]  # Retry-After wins over the short backoff


def test_bad_input_is_not_retried(monkeypatch) -> None:
    server = FlakyServer(failures=100, status=400)
    client = MnistClient("http://x", http_transport=httpx.MockTransport(server))
    with pytest.raises(InvalidInput):
        client.classify(np.zeros((28, 28)))
    assert server.calls == 1


async def test_async_client_retries_the_same_way(monkeypatch) -> None:
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    monkeypatch.setattr("mnist_client._client.asyncio.sleep", fake_sleep)
    server = FlakyServer(failures=2, status=429, retry_after="1")
    async with AsyncMnistClient("http://x", http_transport=httpx.MockTransport(server)) as client:
        result = await client.classify(np.zeros((2, 28, 28), np.uint8))
    assert len(result) == 1 and server.calls == 3 and sleeps == [1.0, 1.0]


# -- gRPC over a fake channel ------------------------------------------------------------------


class FakeChannel:
    """Answers Classify from a script: a list of responses or grpc codes, in order."""

    def __init__(self, script):
        self.script, self.requests = list(script), []

    def unary_unary(self, method, request_serializer=None, response_deserializer=None, **_):
        def call(request, timeout=None, metadata=None):
            self.requests.append((method, request_serializer(request), metadata))
            step = self.script.pop(0)
            if isinstance(step, grpc.StatusCode):
                raise FakeRpcError(step)
            return step

        return call

    def close(self):
        pass


class FakeRpcError(grpc.RpcError):
    def __init__(self, code):
        self._code = code

    def code(self):
        return self._code

    def details(self):
        return f"{self._code.name} from the fake"

    def trailing_metadata(self):
        return (("retry-after", "0"),)


def test_grpc_encoding_decoding_and_retry(monkeypatch) -> None:
    monkeypatch.setattr("mnist_client._client.time.sleep", lambda s: None)
    answer = digits_pb2.ClassifyResponse(model_version=7)
    for d in (3, 8):
        answer.results.add(digit=d, confidence=0.9, probabilities=np.eye(10)[d].tolist())
    channel = FakeChannel([grpc.StatusCode.UNAVAILABLE, answer])
    client = MnistClient("grpc://gw:8081", grpc_channel=channel, api_key="k")
    result = client.classify(
        [np.zeros((28, 28), np.uint8), _png(np.zeros((30, 30), np.uint8))], top_k=1
    )
    assert [r.digit for r in result] == [3, 8] and result[0].model_version == 7
    method, raw, metadata = channel.requests[-1]
    assert method == "/mnist.v1.DigitClassifier/Classify" and metadata == (
        ("authorization", "Bearer k"),
    )
    sent = digits_pb2.ClassifyRequest.FromString(raw)
    assert (
        len(sent.images[0].raw) == 784
        and sent.images[1].encoded.startswith(b"\x89PNG")
        and sent.top_k == 1
    )
    with pytest.raises(NotFound, match="NOT_FOUND from the fake"):
        MnistClient(
            "grpc://gw:8081", grpc_channel=FakeChannel([grpc.StatusCode.NOT_FOUND])
        ).classify(np.zeros((28, 28)))


def test_configuration_errors_are_clear() -> None:
    with pytest.raises(InvalidInput, match="names no host"):
        MnistClient("http://")
    with pytest.raises(InvalidInput, match="http:// or https://"):
        MnistClient("ftp://x")
    with pytest.raises(InvalidInput, match="top_k must be an integer 0-10"):
        MnistClient("http://x").classify(np.zeros((28, 28)), top_k=11)
