"""Settings that are refused before anything starts, with a message naming the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from mnist_serving.settings import Settings


def test_cors_origins_are_split_and_must_be_origins() -> None:
    settings = Settings(cors_allow_origins="https://a.example.com, http://127.0.0.1:3000")
    assert settings.cors_allow_origins == ["https://a.example.com", "http://127.0.0.1:3000"]
    for wrong in ("a.example.com", "https://a.example.com/page", "ftp://a.example.com"):
        with pytest.raises(ValidationError, match="is not scheme://host"):
            Settings(cors_allow_origins=wrong)


def test_any_origin_with_credentials_is_refused() -> None:
    assert Settings(cors_allow_origins="*").cors_allow_origins == ["*"]
    with pytest.raises(ValidationError, match="list the origins instead"):
        Settings(cors_allow_origins="*", cors_allow_credentials=True)


def test_mutual_tls_needs_the_servers_own_certificate() -> None:
    with pytest.raises(ValidationError, match="mutual TLS"):
        Settings(tls_client_ca_file=Path("ca.pem"))
    settings = Settings(
        tls_cert_file=Path("c.pem"), tls_key_file=Path("k.pem"), tls_client_ca_file=Path("ca.pem")
    )
    assert settings.tls_client_auth == "required"  # the safe default


def test_the_door_limits_have_sane_bounds() -> None:
    assert Settings().header_timeout_seconds == 10 and Settings().max_connections == 4096
    with pytest.raises(ValidationError):
        Settings(header_timeout_seconds=0)
    with pytest.raises(ValidationError):
        Settings(max_connections=0)
