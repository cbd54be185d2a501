"""The REST API in-process: every TF Serving shape, the digits API, and each error case."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from tests.helpers.gateways import b64_png, png_bytes


def _scaled(x: np.ndarray) -> np.ndarray:
    return (x.astype(np.float32) / 255.0)[..., None]


# -- TF Serving API -----------------------------------------------------------------------


async def test_status_as_tf_serving_gives_it(api) -> None:
    for path in (
        "/v1/models/mnist",
        "/v1/models/mnist/versions/1",
        "/v1/models/mnist/labels/stable",
    ):
        r = await api.get(path)
        assert r.status_code == 200
        assert r.json() == {
            "model_version_status": [
                {
                    "version": "1",
                    "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""},
                }
            ]
        }


async def test_metadata_lists_both_signatures(api) -> None:
    r = await api.get("/v1/models/mnist/metadata")
    assert r.status_code == 200
    doc = r.json()
    assert doc["model_spec"] == {"name": "mnist", "signature_name": "", "version": "1"}
    sigs = doc["metadata"]["signature_def"]["signature_def"]
    assert set(sigs) == {"serving_default", "predict_images"}
    dims = sigs["predict_images"]["inputs"]["images"]["tensor_shape"]["dim"]
    assert [d["size"] for d in dims] == ["-1", "784"]
    assert set(sigs["serving_default"]["outputs"]) == {"probabilities"}


async def test_predict_row_and_columnar_formats_agree(api, digits) -> None:
    x, y = _scaled(digits["x_test"][:8]), digits["y_test"][:8]
    rows = await api.post("/v1/models/mnist:predict", json={"instances": x.tolist()})
    cols = await api.post("/v1/models/mnist:predict", json={"inputs": {"images": x.tolist()}})
    named = await api.post(
        "/v1/models/mnist:predict", json={"instances": [{"images": i} for i in x.tolist()]}
    )
    assert rows.status_code == cols.status_code == named.status_code == 200
    predictions = np.array(rows.json()["predictions"])
    assert predictions.shape == (8, 10)
    np.testing.assert_allclose(predictions, np.array(cols.json()["outputs"]), rtol=1e-6)
    np.testing.assert_allclose(predictions, np.array(named.json()["predictions"]), rtol=1e-6)
    assert (predictions.argmax(1) == y).mean() >= 0.75


async def test_predict_images_signature_takes_flat_rows(api, digits) -> None:
    x = _scaled(digits["x_test"][:4])
    flat = await api.post(
        "/v1/models/mnist/versions/1:predict",
        json={"signature_name": "predict_images", "instances": x.reshape(4, 784).tolist()},
    )
    square = await api.post(
        "/v1/models/mnist/labels/stable:predict", json={"instances": x.tolist()}
    )
    assert flat.status_code == 200, flat.text
    np.testing.assert_allclose(flat.json()["predictions"], square.json()["predictions"], rtol=1e-5)


async def test_gzip_request_body(api, digits) -> None:
    body = gzip.compress(json.dumps({"instances": _scaled(digits["x_test"][:2]).tolist()}).encode())
    r = await api.post(
        "/v1/models/mnist:predict",
        content=body,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert r.status_code == 200 and len(r.json()["predictions"]) == 2


async def test_a_rows_body_answers_as_the_usual_json_path_does(api, digits) -> None:
    """Sixteen images, read by json_rows' shortcut. The same document with its key spelled
    with a JSON escape (which the shortcut leaves to orjson) answers the same."""
    text = json.dumps({"instances": _scaled(digits["x_test"][:16]).tolist()})
    escaped = text.replace('"instances"', '"\\u0069nstances"')
    headers = {"Content-Type": "application/json"}
    fast = await api.post("/v1/models/mnist:predict", content=text.encode(), headers=headers)
    usual = await api.post("/v1/models/mnist:predict", content=escaped.encode(), headers=headers)
    assert fast.status_code == usual.status_code == 200, fast.text
    assert fast.json() == usual.json()
    assert len(fast.json()["predictions"]) == 16
    malformed = text.replace("0.0", ".5", 1).encode()  # not a JSON number
    bad = await api.post("/v1/models/mnist:predict", content=malformed, headers=headers)
    assert bad.status_code == 400 and "malformed JSON" in bad.json()["error"]


ZEROS = np.zeros((1, 28, 28, 1)).tolist()


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v1/models/mnist:predict", {}, 400, "Missing 'inputs' or 'instances' key"),
        (
            "/v1/models/mnist:predict",
            {"instances": ZEROS, "inputs": ZEROS},
            400,
            "expecting only one of",
        ),
        ("/v1/models/mnist:predict", {"instances": []}, 400, "No values in 'instances' array"),
        (
            "/v1/models/mnist:predict",
            {"instances": [[1, 2], [3]]},
            400,
            "rows of different lengths",
        ),
        ("/v1/models/mnist:predict", {"instances": [["a"] * 784]}, 400, "not a numeric tensor"),
        (
            "/v1/models/mnist:predict",
            {"instances": [[0.0] * 784]},
            400,
            r"must have shape \[N,28,28,1\], got \[1, 784\]",
        ),
        (
            "/v1/models/mnist:predict",
            {"signature_name": "nope", "instances": ZEROS},
            400,
            '"nope" not found',
        ),
        ("/v1/models/mnist:predict", {"inputs": {"pixels": ZEROS}}, 400, "unknown input"),
        ("/v1/models/mnist:predict", {"instances": 3}, 400, "'instances' must be a JSON array"),
        ("/v1/models/mnist:predict", [1, 2], 400, "must be a JSON object"),
        (
            "/v1/models/mnist/versions/7:predict",
            {"instances": ZEROS},
            404,
            r"Servable not found for request: Specific\(mnist, 7\)",
        ),
        (
            "/v1/models/mnist/versions/x:predict",
            {"instances": ZEROS},
            400,
            "version must be a positive integer",
        ),
        (
            "/v1/models/mnist/labels/canary:predict",
            {"instances": ZEROS},
            404,
            "Unrecognized servable version label: canary",
        ),
        (
            "/v1/models/other:predict",
            {"instances": ZEROS},
            404,
            r"Servable not found for request: Latest\(other\)",
        ),
    ],
)
async def test_predict_errors_name_the_problem(api, path, body, status, message) -> None:
    r = await api.post(path, json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    import re

    assert re.search(message, r.json()["error"]), r.json()


async def test_nan_input_is_refused_and_output_is_strict_json(api) -> None:
    r = await api.post(
        "/v1/models/mnist:predict",
        content=b'{"instances": [[[[NaN]]]]}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400  # orjson refuses the bare NaN token itself
    x = np.full((1, 28, 28, 1), 1e39).tolist()  # float32 overflow → inf
    r = await api.post("/v1/models/mnist:predict", json={"instances": x})
    assert r.status_code == 400 and "NaN or infinity" in r.json()["error"]


async def test_malformed_json_and_oversized_bodies(api) -> None:
    r = await api.post(
        "/v1/models/mnist:predict", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"].startswith("malformed JSON")
    big = b"[" + b"0," * (5 * 1024 * 1024) + b"0]"
    r = await api.post("/v1/models/mnist:predict", content=big)
    assert r.status_code == 413 and "limit" in r.json()["error"]
    bomb = gzip.compress(b" " * (20 * 1024 * 1024))
    r = await api.post(
        "/v1/models/mnist:predict", content=bomb, headers={"Content-Encoding": "gzip"}
    )
    assert r.status_code == 413


# -- the digits API -----------------------------------------------------------------------


async def test_classify_json_pixels_ints_floats_and_b64(api, digits) -> None:
    x, y = digits["x_test"][:6], digits["y_test"][:6]
    body = {
        "images": [x[0].tolist(), (x[1] / 255.0).tolist(), b64_png(x[2]), b64_png(255 - x[3])],
        "top_k": 3,
        "return_preprocessed": True,
    }
    r = await api.post("/v1/digits:classify", json=body)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["model_version"] == 1 and doc["model_name"] == "mnist"
    got = [p["digit"] for p in doc["predictions"]]
    assert got[:3] == y[:3].tolist()
    first = doc["predictions"][0]
    assert len(first["probabilities"]) == 10 and abs(sum(first["probabilities"]) - 1) < 1e-4
    assert first["confidence"] == max(first["probabilities"])
    assert first["top_k"][0]["digit"] == first["digit"] and len(first["top_k"]) == 3
    assert np.array(first["preprocessed"]).shape == (28, 28)
    assert np.array_equal(first["preprocessed"], x[0])


async def test_classify_raw_png_body_multipart_and_octet_stream(api, digits) -> None:
    x, y = digits["x_test"][:5], digits["y_test"][:5]
    r = await api.post(
        "/v1/digits:classify?top_k=2",
        content=png_bytes(x[0]),
        headers={"Content-Type": "image/png"},
    )
    assert r.status_code == 200 and r.json()["predictions"][0]["digit"] == y[0]
    assert len(r.json()["predictions"][0]["top_k"]) == 2
    files = [("file", (f"{i}.png", png_bytes(x[i]), "image/png")) for i in range(3)]
    r = await api.post("/v1/digits:classify", files=files)
    assert r.status_code == 200, r.text
    assert [p["digit"] for p in r.json()["predictions"]] == y[:3].tolist()
    r = await api.post(
        "/v1/digits:classify",
        content=x.tobytes(),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert [p["digit"] for p in r.json()["predictions"]] == y.tolist()


async def test_a_large_dark_on_light_png_is_classified_after_preprocessing(api, digits) -> None:
    """Scans (10× larger, dark ink on white) get the same answers as the original frames."""
    from PIL import Image

    x, y = digits["x_test"][:20], digits["y_test"][:20]
    originals = await api.post("/v1/digits:classify", json={"images": x.tolist()})
    scans = []
    for image in x:
        scan = np.asarray(Image.fromarray(255 - image).resize((280, 280), Image.Resampling.BICUBIC))
        r = await api.post(
            "/v1/digits:classify", content=png_bytes(scan), headers={"Content-Type": "image/png"}
        )
        assert r.status_code == 200
        scans.append(r.json()["predictions"][0]["digit"])
    expected = [p["digit"] for p in originals.json()["predictions"]]
    assert sum(a == b for a, b in zip(scans, expected, strict=True)) >= 19
    assert sum(a == b for a, b in zip(scans, y, strict=True)) >= 17  # the fixture model's ~95%


@pytest.mark.parametrize(
    ("kwargs", "status", "message"),
    [
        ({"json": {"images": []}}, 400, "no images in the request"),
        ({"json": {"pictures": []}}, 400, "unknown field"),
        ({"json": {}}, 400, "missing 'images'"),
        (
            {"json": {"images": [[[300] * 28] * 28]}},
            400,
            "integer pixels must be 0-255, found values from 300 to 300",
        ),
        (
            {"json": {"images": [[[0.5] * 28] * 27 + [[2.0] * 28]]}},
            400,
            "float pixels must be 0.0-1.0",
        ),
        ({"json": {"images": [[True] * 28]}}, 400, "pixels must be numbers"),
        ({"json": {"images": [[0] * 784]}}, 400, r"must be 2-D \(28×28\), got shape \[784\]"),
        ({"json": {"images": [[[0] * 28] * 27 + [[0] * 3]]}}, 400, "rows have different lengths"),
        ({"json": {"images": [{"b64": "!!!"}]}}, 400, "not valid base64"),
        (
            {"json": {"images": [{"b64": "aGVsbG8="}]}},
            400,
            "image 0: not an image in a supported format",
        ),
        ({"json": {"images": ["x"]}}, 400, "expected a 2-D pixel array"),
        (
            {"json": {"images": [[[0] * 28] * 28], "top_k": 11}},
            400,
            "top_k must be an integer 0-10",
        ),
        ({"json": {"images": [[[0] * 28] * 28], "version": 9}}, 404, "Servable not found"),
        (
            {"content": b"\x89PNG\r\n\x1a\n trunc", "headers": {"Content-Type": "image/png"}},
            400,
            "image 0",
        ),
        (
            {"content": b"abc", "headers": {"Content-Type": "application/octet-stream"}},
            400,
            "N×784 bytes",
        ),
        (
            {"content": b"hello", "headers": {"Content-Type": "text/plain"}},
            415,
            "unsupported Content-Type 'text/plain'",
        ),
        (
            {
                "content": b"--x\r\nbroken",
                "headers": {"Content-Type": "multipart/form-data; boundary=x"},
            },
            400,
            "multipart",
        ),
    ],
)
async def test_classify_errors_name_the_problem(api, kwargs, status, message) -> None:
    import re

    r = await api.post("/v1/digits:classify", **kwargs)
    assert r.status_code == status, r.text
    assert re.search(message, r.json()["error"]), r.json()


async def test_too_many_images(model_dir) -> None:
    from mnist_serving.settings import Settings
    from tests.helpers.gateways import in_process

    async with in_process(Settings(model_dir=model_dir, max_images_per_request=4)) as c:
        r = await c.post(
            "/v1/digits:classify",
            content=bytes(784 * 5),
            headers={"Content-Type": "application/octet-stream"},
        )
    assert r.status_code == 400 and "5 images in one request; the limit is 4" in r.json()["error"]


# -- operations ---------------------------------------------------------------------------


async def test_health_readiness_docs_and_unknown_routes(api) -> None:
    assert (await api.get("/healthz")).json() == {"status": "alive"}
    ready = await api.get("/readyz")
    assert ready.status_code == 200 and ready.json()["versions"] == [1]
    spec = (await api.get("/openapi.json")).json()
    assert "/v1/digits:classify" in spec["paths"] and "/v1/models/{model}:predict" in spec["paths"]
    docs = await api.get("/docs")
    assert (
        docs.status_code == 200 and "openapi.json" in docs.text and "cdn" not in docs.text.lower()
    )
    missing = await api.get("/v2/nothing")
    assert missing.status_code == 404 and "no such route" in missing.json()["error"]
    wrong = await api.get("/v1/digits:classify")
    assert wrong.status_code == 405


async def test_metrics_move_and_health_probes_are_not_counted(api, digits) -> None:
    def sample(text: str, name: str) -> float:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and not line.startswith("#")
        )

    before = (await api.get("/metrics")).text
    await api.get("/healthz")
    await api.get("/readyz")
    await api.post("/v1/digits:classify", json={"images": digits["x_test"][:3].tolist()})
    await api.post("/v1/digits:classify", json={"images": []})
    after = (await api.get("/metrics")).text
    ok = 'mnist_requests_total{code="OK",protocol="rest",route="classify"}'
    bad = 'mnist_requests_total{code="INVALID_ARGUMENT",protocol="rest",route="classify"}'
    assert sample(after, ok) - sample(before, ok) == 1
    assert sample(after, bad) - sample(before, bad) == 1
    assert 'route="healthz"' not in after and 'route="readyz"' not in after
    assert sample(after, "mnist_images_total") - sample(before, "mnist_images_total") == 3
    assert sample(after, "mnist_predictions_total") - sample(before, "mnist_predictions_total") == 3
    assert (
        sample(after, "mnist_prediction_confidence_count")
        - sample(before, "mnist_prediction_confidence_count")
        == 3
    )
    assert "mnist_model_info{loaded_at=" in after and 'version="1"' in after
    assert "process_resident_memory_bytes" in after
    assert (
        sample(
            after,
            'mnist_request_duration_seconds_bucket{code="OK",protocol="rest",route="classify",le="0.0005"}',
        )
        >= 0
    )


@pytest.mark.parametrize(
    "request_args",
    [
        ("GET", "/v1/models/mnist/versions/%C2%B2", {}),  # "²": a digit to str.isdigit, not to int
        ("POST", "/v1/digits:classify?version=%C2%B2", {"json": {"images": [[[0] * 28] * 28]}}),
        ("POST", "/v1/digits:classify?top_k=%C2%B2", {"json": {"images": [[[0] * 28] * 28]}}),
    ],
)
async def test_unicode_digits_are_not_numbers(api, request_args) -> None:
    method, path, kwargs = request_args
    r = await api.request(method, path, **kwargs)
    assert 400 <= r.status_code < 500, r.text
