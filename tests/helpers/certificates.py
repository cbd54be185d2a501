"""Certificates for the TLS tests, made with openssl: a CA, a server certificate for
127.0.0.1 and localhost, client certificates it signed, and a client certificate another CA
signed (which a gateway trusting the first must refuse)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


def _openssl(command: str) -> None:
    """One openssl command, its words split on spaces (the test folders have none)."""
    subprocess.run(["openssl", *command.split()], check=True, capture_output=True, timeout=60)


def _authority(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    _openssl(
        f"req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN={name} -keyout {key} -out {cert}"
    )
    return cert, key


def _signed(folder: Path, name: str, ca: tuple[Path, Path], extension: str) -> tuple[Path, Path]:
    cert, key, request = folder / f"{name}.pem", folder / f"{name}.key", folder / f"{name}.csr"
    _openssl(f"req -newkey rsa:2048 -nodes -subj /CN={name} -keyout {key} -out {request}")
    extfile = folder / f"{name}.ext"
    extfile.write_text(extension + "\n")
    _openssl(
        f"x509 -req -in {request} -CA {ca[0]} -CAkey {ca[1]} -CAcreateserial -days 2 "
        f"-out {cert} -extfile {extfile}"
    )
    return cert, key


@dataclass(frozen=True)
class Certificates:
    ca: Path
    server: tuple[Path, Path]  # certificate, key
    client: tuple[Path, Path]  # CN=dashboard, signed by ca
    stranger: tuple[Path, Path]  # CN=stranger, signed by another CA

    @classmethod
    def make(cls, folder: Path) -> Certificates:
        ca = _authority(folder, "mnist-test-ca")
        names = "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"
        server = _signed(folder, "127.0.0.1", ca, names)
        client = _signed(folder, "dashboard", ca, "extendedKeyUsage=clientAuth")
        other = _authority(folder, "another-ca")
        stranger = _signed(folder, "stranger", other, "extendedKeyUsage=clientAuth")
        return cls(ca[0], server, client, stranger)
