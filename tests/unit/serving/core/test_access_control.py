"""API keys and per-key token buckets: where keys come from, how they are checked, how rates are
kept."""

from __future__ import annotations

import pytest

from mnist_serving.core.access_control import (
    AccessControl,
    KeyFileError,
    bearer_or_api_key,
    load_keys,
)
from mnist_serving.errors import RateLimited, Unauthenticated

ALICE = "alice-key-0123456789abcdef"


BOB = "bob-key-0123456789abcdef00"


def test_keys_from_file_and_env(tmp_path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# team keys\nalice:{ALICE}\n\nbob: {BOB}\n")
    assert load_keys(path, {"ci": "ci-key-0123456789abcdef"}) == {
        "alice": ALICE,
        "bob": BOB,
        "ci": "ci-key-0123456789abcdef",
    }
    path.write_text("alice:short\n")
    with pytest.raises(KeyFileError, match=r"keys:1: expected 'name:key'"):
        load_keys(path, {})
    with pytest.raises(KeyFileError, match="cannot read"):
        load_keys(tmp_path / "missing", {})
    with pytest.raises(KeyFileError, match="share the same key"):
        load_keys(None, {"a": ALICE, "b": ALICE})


def test_authentication_and_token_buckets() -> None:
    access = AccessControl({"alice": ALICE}, rate_per_second=2, burst=3)
    assert access.authenticate(ALICE) == "alice"
    with pytest.raises(Unauthenticated, match="missing API key"):
        access.authenticate(None)
    with pytest.raises(Unauthenticated, match=r"^invalid API key$"):
        access.authenticate(ALICE + "x")
    for _ in range(3):
        access.admit("alice", now=100.0)
    with pytest.raises(RateLimited) as info:
        access.admit("alice", now=100.0)
    assert info.value.retry_after == 1
    access.admit("alice", now=100.6)  # 0.6 s × 2/s = 1.2 tokens back
    assert AccessControl({}, 0, 1).authenticate(None) == "anonymous"
    assert bearer_or_api_key("Bearer abc", None) == "abc"
    assert bearer_or_api_key(None, " xyz ") == "xyz"
    assert bearer_or_api_key("Basic abc", None) is None
