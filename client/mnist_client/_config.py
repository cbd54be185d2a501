"""The client's settings, parsed once from the URL and options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from mnist_client._errors import InvalidInput

Transport = Literal["rest", "grpc"]
Api = Literal["digits", "tfserving", "v2"]


@dataclass(frozen=True)
class ClientConfig:
    url: str  # http(s)://host:port for REST; host:port for gRPC
    transport: Transport
    api: Api
    timeout: float
    retries: int
    backoff: float
    max_backoff: float
    chunk_size: int
    api_key: str | None
    model: str
    tls: bool = False  # grpcs:// (REST takes it from https://)
    ca_file: str | None = None  # PEM roots to trust instead of the system's (self-signed certs)
    cert_file: str | None = None  # PEM client certificate (chain), for mutual TLS
    key_file: str | None = None  # its private key

    @classmethod
    def create(
        cls,
        url: str,
        *,
        transport: Transport | None,
        api: Api,
        timeout: float,
        retries: int,
        backoff: float,
        max_backoff: float,
        chunk_size: int,
        api_key: str | None,
        model: str,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
    ) -> ClientConfig:
        parts = urlsplit(url if "://" in url else f"//{url}")
        scheme = parts.scheme.lower()
        if transport is None:
            transport = "grpc" if scheme in ("grpc", "grpcs") else "rest"
        if not parts.hostname:
            raise InvalidInput(f"URL {url!r} names no host (e.g. http://127.0.0.1:8080)")
        if transport == "grpc":
            port = parts.port or 8081
            target = f"{parts.hostname}:{port}"
        else:
            if scheme not in ("http", "https"):
                raise InvalidInput(f"REST needs an http:// or https:// URL, got {url!r}")
            target = f"{scheme}://{parts.netloc}"
        if (cert_file is None) != (key_file is None):
            raise InvalidInput("a client certificate needs both cert_file and key_file")
        if api not in ("digits", "tfserving", "v2"):
            raise InvalidInput(f"api must be 'digits', 'tfserving' or 'v2', got {api!r}")
        if timeout <= 0 or retries < 0 or backoff < 0 or chunk_size < 1:
            raise InvalidInput("timeout and chunk_size must be positive; retries and backoff ≥ 0")
        return cls(
            target,
            transport,
            api,
            timeout,
            retries,
            backoff,
            max_backoff,
            chunk_size,
            api_key,
            model,
            tls=scheme in ("grpcs", "https"),
            ca_file=ca_file,
            cert_file=cert_file,
            key_file=key_file,
        )
