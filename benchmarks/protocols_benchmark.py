"""The Open Inference Protocol (V2) beside TF Serving's API and the digits API, on one gateway,
driven by C load generators (wrk for REST, h2load for gRPC), single images and 256-image
requests, with the gateway's CPU time per request.

    python -m benchmarks.protocols_benchmark --model-dir models --seconds 5 --rounds 3 \
        > benchmarks/results/protocols-benchmark.md

Every round measures every point, in the same order, so the machine's drift hits all alike; the
table gives each point's median over the rounds. The load generator shares the machine's cores
with the gateway, so absolute figures are lower than on separate machines; the ratios between
faces are what this compares.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from benchmarks.cload import h2load_grpc, wrk_post
from benchmarks.support import benchmark_digits, benchmark_parser
from mnist_contract.open_inference import HEADER_LENGTH
from mnist_contract.protos import digits_pb2
from mnist_contract.protos import open_inference_pb2 as v2_pb
from mnist_contract.protos import tensorflow_serving_pb2 as tfs
from mnist_contract.tensors import array_to_tensor
from tests.helpers.processes import cpu_seconds, start_gateway, stop_gateway

JSON = {"Content-Type": "application/json"}
PREDICT = "/tensorflow.serving.PredictionService/Predict"
INFER = "/inference.GRPCInferenceService/ModelInfer"
CLASSIFY = "/mnist.v1.DigitClassifier/Classify"


@dataclass(frozen=True)
class Face:
    """One way of asking for the same answer: its protocol and how to encode N images."""

    name: str
    transport: str  # "rest" or "grpc"
    target: str  # a REST path or a gRPC method
    encode: Callable[[np.ndarray], tuple[bytes, dict[str, str]]]


def _floats(frames: np.ndarray) -> np.ndarray:
    return (frames.astype(np.float32) / 255).reshape(-1, 28, 28, 1)


def _tfserving_rows(frames: np.ndarray) -> tuple[bytes, dict[str, str]]:
    return json.dumps({"instances": _floats(frames).tolist()}).encode(), JSON


def _v2_json(datatype: str) -> Callable[[np.ndarray], tuple[bytes, dict[str, str]]]:
    def encode(frames: np.ndarray) -> tuple[bytes, dict[str, str]]:
        data = _floats(frames) if datatype == "FP32" else frames.reshape(-1, 28, 28, 1)
        tensor = {
            "name": "images",
            "datatype": datatype,
            "shape": list(data.shape),
            "data": data.ravel().tolist(),
        }
        return json.dumps({"inputs": [tensor]}).encode(), JSON

    return encode


def _v2_binary(frames: np.ndarray) -> tuple[bytes, dict[str, str]]:
    data = _floats(frames).tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "images",
                    "datatype": "FP32",
                    "shape": [len(frames), 28, 28, 1],
                    "parameters": {"binary_data_size": len(data)},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    return header + data, {
        "Content-Type": "application/octet-stream",
        HEADER_LENGTH: str(len(header)),
    }


def _digits_octet(frames: np.ndarray) -> tuple[bytes, dict[str, str]]:
    return frames.tobytes(), {"Content-Type": "application/octet-stream"}


def _tfserving_grpc(frames: np.ndarray) -> tuple[bytes, dict[str, str]]:
    request = tfs.PredictRequest()
    request.model_spec.name = "mnist"
    request.inputs["images"].CopyFrom(array_to_tensor(_floats(frames)))
    return request.SerializeToString(), {}


def _v2_grpc(frames: np.ndarray) -> tuple[bytes, dict[str, str]]:
    images = _floats(frames)
    request = v2_pb.ModelInferRequest(model_name="mnist")
    request.inputs.add(name="images", datatype="FP32", shape=list(images.shape))
    request.raw_input_contents.append(images.tobytes())
    return request.SerializeToString(), {}


def _digits_grpc(frames: np.ndarray) -> tuple[bytes, dict[str, str]]:
    request = digits_pb2.ClassifyRequest()
    for frame in frames:
        request.images.add(raw=frame.tobytes())
    return request.SerializeToString(), {}


FACES = (
    Face("TF Serving REST, JSON rows", "rest", "/v1/models/mnist:predict", _tfserving_rows),
    Face("V2 REST, JSON FP32", "rest", "/v2/models/mnist/infer", _v2_json("FP32")),
    Face("V2 REST, JSON UINT8", "rest", "/v2/models/mnist/infer", _v2_json("UINT8")),
    Face("V2 REST, binary FP32", "rest", "/v2/models/mnist/infer", _v2_binary),
    Face("digits REST, octet-stream", "rest", "/v1/digits:classify", _digits_octet),
    Face("TF Serving gRPC, tensor_content", "grpc", PREDICT, _tfserving_grpc),
    Face("V2 gRPC, raw FP32", "grpc", INFER, _v2_grpc),
    Face("digits gRPC, raw frames", "grpc", CLASSIFY, _digits_grpc),
)
SIZES = ((1, 32), (256, 4))  # (images per request, connections)


def point(face: Face, frames: np.ndarray, connections: int, seconds: float, gateway) -> dict:
    body, headers = face.encode(frames)
    cpu = cpu_seconds(gateway.process.pid)
    if face.transport == "rest":
        r = wrk_post(gateway.url + face.target, body, headers, connections, seconds)
    else:
        r = h2load_grpc(gateway.grpc, face.target, body, connections, seconds)
    used = cpu_seconds(gateway.process.pid) - cpu
    r["cpu_us_per_request"] = round(used * 1e6 / max(r["requests"], 1))
    r["images_per_s"] = round(r["rps"] * len(frames))
    return r


def median_cells(points: list[dict]) -> str:
    """req/s, images/s, p50, p99, CPU per request (medians over rounds) and errors (summed),
    as the table cells that end a row."""
    med = {
        k: statistics.median(r[k] for r in points)
        for k in ("rps", "images_per_s", "p50_ms", "p99_ms", "cpu_us_per_request")
    }
    errors = sum(r["errors"] for r in points)
    return (
        f"{med['rps']:,.0f} | {med['images_per_s']:,.0f} | {med['p50_ms']:.2f} | "
        f"{med['p99_ms']:.2f} | {med['cpu_us_per_request']:,.0f} | {errors} |"
    )


def main() -> None:
    parser = benchmark_parser(__doc__, seconds=5, rounds=3)
    args = parser.parse_args()
    digits = benchmark_digits(args.data)
    gateway = start_gateway(args.model_dir)
    rows: list[dict] = []
    try:
        for round_ in range(args.rounds):
            for images, connections in SIZES:
                for face in FACES:
                    r = point(face, digits[:images], connections, args.seconds, gateway)
                    rows.append(
                        {
                            "face": face.name,
                            "images": images,
                            "connections": connections,
                            "round": round_,
                            **r,
                        }
                    )
    finally:
        stop_gateway(gateway)
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}; wrk -t2 / h2load -t1 on the same cores; gateway "
        f"defaults (LiteRT, batching, metrics, limits on); median of {args.rounds} rounds of "
        f"{args.seconds:g} s\n"
    )
    print(
        "| request | images | conn. | req/s | images/s | p50 ms | p99 ms | gateway CPU µs/request | errors |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for images, connections in SIZES:
        for face in FACES:
            points = [r for r in rows if r["face"] == face.name and r["images"] == images]
            print(f"| {face.name} | {images} | {connections} | {median_cells(points)}")
    print("\n```json\n" + json.dumps(rows, indent=1) + "\n```")


if __name__ == "__main__":
    main()
