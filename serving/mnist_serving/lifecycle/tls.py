"""TLS on both ports: the files read once at start, and the policy they are served with.

The policy is Mozilla's "intermediate" profile (https://wiki.mozilla.org/Security/Server_Side_TLS):
TLS 1.2 and 1.3 only, and on TLS 1.2 only suites with forward secrecy and authenticated
encryption (ECDHE with AES-GCM or ChaCha20-Poly1305; CBC suites are refused). TLS 1.3's suites
are all of that kind. gRPC's own TLS library already offers only such suites and TLS ≥ 1.2;
the REST server's context is built here. With a client CA, clients prove who they are with a
certificate (mutual TLS); a verified client's name goes to the access log.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import grpc

# OpenSSL names of the TLS 1.2 suites the REST port accepts, in Mozilla's order.
TLS12_AEAD_SUITES = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)


@dataclass(frozen=True)
class Tls:
    cert_file: Path
    key_file: Path
    cert: bytes
    key: bytes
    client_ca_file: Path | None = None  # mutual TLS: the CA client certificates chain to
    client_ca: bytes | None = None
    client_auth: Literal["required", "optional"] = "required"


def rest_context(tls: Tls) -> ssl.SSLContext:
    """The REST server's TLS context: the intermediate profile, and client certificates
    checked against the client CA when there is one."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_AEAD_SUITES)
    context.options |= ssl.OP_NO_RENEGOTIATION
    context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.client_ca_file is not None:
        context.load_verify_locations(cafile=str(tls.client_ca_file))
        # A certificate that is sent is verified here; one that is required but missing is
        # answered 403 by the REST server, which can say why (a TLS handshake refused by an
        # asyncio server reaches the client as a reset connection, without its alert).
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


def grpc_credentials(tls: Tls) -> grpc.ServerCredentials:
    """The gRPC server's credentials. grpcio can ask a client for a certificate only by
    requiring it: with ``optional`` client auth it asks for none."""
    required = tls.client_ca is not None and tls.client_auth == "required"
    return grpc.ssl_server_credentials(
        [(tls.key, tls.cert)],
        root_certificates=tls.client_ca if required else None,
        require_client_auth=required,
    )
