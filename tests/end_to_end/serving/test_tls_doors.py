"""TLS at both doors: Mozilla's intermediate policy (a client asking for a removed TLS 1.2
suite is refused), and mutual TLS, required or optional, with real clients (curl, grpcio, the
SDK); a verified client's name in the access log."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import warnings
from collections.abc import Iterator

import grpc
import pytest

from mnist_client import MnistClient
from mnist_contract.protos import digits_pb2, digits_pb2_grpc
from tests.helpers.certificates import Certificates
from tests.helpers.processes import Server, run_gateway, start_gateway, stop_gateway
from tests.helpers.versions import wait_for

CBC_SUITES = "ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA"
AEAD_SUITE = "ECDHE-RSA-AES128-GCM-SHA256"
CURL = ("curl", "-sS", "--max-time", "10")
CLASSIFY = "/v1/digits:classify"
OCTET_BODY = ("-H", "Content-Type: application/octet-stream", "--data-binary", "@-")


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Certificates:
    return Certificates.make(tmp_path_factory.mktemp("certificates"))


def _tls_flags(certs: Certificates, *more: str) -> tuple[str, ...]:
    cert, key = certs.server
    return ("--tls-cert-file", str(cert), "--tls-key-file", str(key), *more)


@pytest.fixture(scope="module")
def mutual(model_dir, certificates) -> Iterator[Server]:
    server = start_gateway(
        model_dir,
        *_tls_flags(certificates, "--tls-client-ca-file", str(certificates.ca)),
        "--access-log",
        "json",
    )
    yield server
    stop_gateway(server)


def _handshake(port: int, ca: str, suites: str | None, version: ssl.TLSVersion) -> str:
    """A TLS handshake with only ``suites`` (TLS 1.2) offered; the suite agreed."""
    context = ssl.create_default_context(cafile=ca)
    with warnings.catch_warnings():  # TLS 1.1 is deprecated: that is what is tried
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = version
    # The client's own policy must not be what refuses (OpenSSL's default security level
    # would drop TLS 1.1 before asking): security level 0 offers whatever is named.
    context.set_ciphers(f"{suites or 'DEFAULT'}:@SECLEVEL=0")
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        agreed = tls.cipher()
        assert agreed is not None
        return agreed[0]


def test_both_ports_refuse_tls_1_2_suites_without_aead(model_dir, certificates) -> None:
    server = start_gateway(model_dir, *_tls_flags(certificates))
    try:
        ca = str(certificates.ca)
        for port in (int(server.url.rsplit(":", 1)[1]), int(server.grpc.rsplit(":", 1)[1])):
            with pytest.raises(ssl.SSLError):  # an alert, or the connection closed
                _handshake(port, ca, CBC_SUITES, ssl.TLSVersion.TLSv1_2)
            assert _handshake(port, ca, AEAD_SUITE, ssl.TLSVersion.TLSv1_2) == AEAD_SUITE
            assert _handshake(port, ca, None, ssl.TLSVersion.TLSv1_3).startswith("TLS_")
            with pytest.raises(ssl.SSLError):
                _handshake(port, ca, None, ssl.TLSVersion.TLSv1_1)
    finally:
        stop_gateway(server)


def _curl(server: Server, certs: Certificates, *client: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CURL, "--cacert", str(certs.ca), *client, *OCTET_BODY, server.url + CLASSIFY],
        input="\0" * 784,
        capture_output=True,
        text=True,
        check=False,
    )


def _client_flags(pair: tuple) -> tuple[str, ...]:
    return ("--cert", str(pair[0]), "--key", str(pair[1]))


def _access_lines(server: Server) -> list[dict]:
    lines = [ln for ln in server.log.read_text().splitlines() if ln.startswith("{")]
    return [d for d in map(json.loads, lines) if d.get("logger") == "mnist_serving.access"]


def test_mutual_tls_lets_in_only_clients_the_ca_signed(mutual: Server, certificates) -> None:
    ok = _curl(mutual, certificates, *_client_flags(certificates.client))
    assert ok.returncode == 0 and "predictions" in ok.stdout, ok.stderr
    no_cert = _curl(mutual, certificates, "--write-out", "%{http_code}")
    assert no_cert.stdout.endswith("403") and "requires a client certificate" in no_cert.stdout
    # A certificate another CA signed fails the TLS handshake itself.
    stranger = _curl(mutual, certificates, *_client_flags(certificates.stranger))
    # TLS 1.3 finishes the client's side of the handshake before the server checks the
    # certificate, so curl sees the refusal as a failed handshake, a reset or an empty reply
    # depending on timing: never an answer.
    assert stranger.returncode in (35, 52, 56) and not stranger.stdout, stranger.stderr
    wait_for(lambda: any(d.get("client_cert") for d in _access_lines(mutual)), "a line", 5)
    lines = _access_lines(mutual)
    assert [d["client_cert"] for d in lines if d["route"] == "classify"] == ["dashboard"]


def test_grpc_and_the_sdk_present_their_certificates(mutual: Server, certificates, digits):
    image, expected = digits["x_test"][0], int(digits["y_test"][0])
    cert, key = certificates.client
    for url in (mutual.url, f"grpcs://{mutual.grpc}"):
        with MnistClient(
            url, ca_file=str(certificates.ca), cert_file=str(cert), key_file=str(key)
        ) as c:
            assert c.classify(image)[0].digit == expected
    request = digits_pb2.ClassifyRequest()
    request.images.add(raw=image.tobytes())
    for pair in (None, certificates.stranger):
        chain = (pair[1].read_bytes(), pair[0].read_bytes()) if pair else (None, None)
        credentials = grpc.ssl_channel_credentials(
            certificates.ca.read_bytes(), private_key=chain[0], certificate_chain=chain[1]
        )
        with (
            grpc.secure_channel(mutual.grpc, credentials) as channel,
            pytest.raises(grpc.RpcError) as refused,
        ):
            digits_pb2_grpc.DigitClassifierStub(channel).Classify(request, timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    grpc_lines = [d for d in _access_lines(mutual) if d["protocol"] == "grpc"]
    assert grpc_lines and all(d["client_cert"] == "dashboard" for d in grpc_lines)


def test_optional_client_certificates_on_rest(model_dir, certificates) -> None:
    server = start_gateway(
        model_dir,
        *_tls_flags(certificates, "--tls-client-ca-file", str(certificates.ca)),
        "--tls-client-auth",
        "optional",
        "--access-log",
        "json",
    )
    try:
        assert _curl(server, certificates).returncode == 0
        assert _curl(server, certificates, *_client_flags(certificates.client)).returncode == 0
        stranger = _curl(server, certificates, *_client_flags(certificates.stranger))
        assert stranger.returncode != 0  # a certificate sent must be one the CA signed
        wait_for(lambda: len(_access_lines(server)) >= 2, "two access lines", 5)
        assert [d.get("client_cert") for d in _access_lines(server)] == [None, "dashboard"]
    finally:
        stop_gateway(server)


def test_a_client_ca_without_a_server_certificate_is_refused_at_start(model_dir, certificates):
    run = run_gateway(model_dir, "--tls-client-ca-file", str(certificates.ca), timeout=60)
    assert run.returncode == 2 and "mutual TLS (tls_client_ca_file) needs" in run.stderr
    cert, _ = certificates.server
    broken = run_gateway(
        model_dir, "--tls-cert-file", str(cert), "--tls-key-file", str(certificates.ca), timeout=60
    )
    assert broken.returncode == 2 and "cannot be used" in broken.stderr, broken.stderr


def test_the_sdk_names_a_client_certificate_it_cannot_use(mutual: Server, certificates) -> None:
    from mnist_client import InvalidInput

    with pytest.raises(InvalidInput, match="needs both cert_file and key_file"):
        MnistClient(mutual.url, cert_file=str(certificates.client[0]))
    with pytest.raises(InvalidInput, match="cannot be used"):
        MnistClient(
            mutual.url,
            cert_file=str(certificates.client[0]),
            key_file=str(certificates.stranger[1]),
        ).close()
