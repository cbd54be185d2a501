"""Clients no one here wrote speak the Open Inference Protocol to the gateway unchanged.

Triton's ``tritonclient`` (HTTP and gRPC) and KServe's ``kserve`` clients run in their own
environment (``.venv-clients``, made by ``python3 dev.py test``; their pins clash with
TensorFlow's), each suite in its own process: the two register the same protobuf names in
protobuf's default pool and cannot be imported together. The suites are in ``tests/external``.
"""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from mnist_contract.protos import open_inference_pb2
from tests.conftest import FIXTURE
from tests.helpers.external import EXTERNAL, clients_python
from tests.helpers.processes import Server, start_gateway, stop_gateway

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def labelled_server(model_dir: Path) -> Iterator[Server]:
    server = start_gateway(model_dir, "--version-labels", '{"stable": 1}')
    yield server
    stop_gateway(server)


@pytest.mark.parametrize("suite", ["check_tritonclient.py", "check_kserve.py"])
def test_the_official_clients_pass_their_suite(labelled_server: Server, suite: str) -> None:
    env = {
        **os.environ,
        "MNIST_V2_REST": labelled_server.url.removeprefix("http://"),
        "MNIST_V2_GRPC": labelled_server.grpc,
        "MNIST_FIXTURE": str(FIXTURE),
    }
    command = [
        str(clients_python()),
        "-m",
        "pytest",
        "-c",
        str(EXTERNAL / "pytest.ini"),
        "-q",
        str(EXTERNAL / suite),
    ]
    result = subprocess.run(
        command, cwd=EXTERNAL, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-8000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout


def _their_messages(client: str) -> dict[str, descriptor_pb2.DescriptorProto]:
    result = subprocess.run(
        [str(clients_python()), str(EXTERNAL / "descriptors.py"), client],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    proto = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(result.stdout))
    return _flatten(proto.package, proto.message_type)


def _flatten(prefix: str, messages) -> dict[str, descriptor_pb2.DescriptorProto]:
    found = {}
    for message in messages:
        name = f"{prefix}.{message.name}"
        found[name] = message
        found.update(_flatten(name, message.nested_type))
    return found


def _ours() -> tuple[descriptor_pb2.FileDescriptorProto, dict[str, descriptor_pb2.DescriptorProto]]:
    proto = descriptor_pb2.FileDescriptorProto()
    open_inference_pb2.DESCRIPTOR.CopyToProto(proto)
    return proto, _flatten(proto.package, proto.message_type)


# Fields the protocol's newer text added, which kserve's older copy of the .proto lacks
# (tritonclient has them: it must match every field).
NEWER_THAN_KSERVE = {
    ("inference.InferParameter", "double_param"),
    ("inference.InferParameter", "uint64_param"),
}


@pytest.mark.parametrize("client", ["tritonclient", "kserve"])
def test_field_numbers_match_the_descriptors_the_official_clients_ship(client: str) -> None:
    ours_file, ours = _ours()
    theirs = _their_messages(client)
    for name, message in ours.items():
        assert name in theirs, f"{client} has no message {name}"
        their_fields = {f.name: f for f in theirs[name].field}
        for field in message.field:
            other = their_fields.get(field.name)
            if other is None and client == "kserve" and (name, field.name) in NEWER_THAN_KSERVE:
                continue
            assert other is not None, f"{client}'s {name} has no field {field.name}"
            assert (field.number, field.type, field.label) == (
                other.number,
                other.type,
                other.label,
            ), (
                f"{name}.{field.name}: ours {field.number}/{field.type}/{field.label}, "
                f"{client}'s {other.number}/{other.type}/{other.label}"
            )
            assert field.type_name.rsplit(".", 1)[-1] == other.type_name.rsplit(".", 1)[-1]
        oneofs = {
            f.name: message.oneof_decl[f.oneof_index].name
            for f in message.field
            if f.HasField("oneof_index") and f.name in their_fields
        }
        their_oneofs = {
            f.name: theirs[name].oneof_decl[f.oneof_index].name
            for f in theirs[name].field
            if f.HasField("oneof_index") and f.name in oneofs
        }
        assert oneofs == their_oneofs, name
    assert ours_file.package == "inference"
    (service,) = ours_file.service
    assert service.name == "GRPCInferenceService"
