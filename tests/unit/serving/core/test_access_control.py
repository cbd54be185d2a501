"""API keys and per-key token buckets: where keys come from, how they are checked, how rates are
kept."""

from __future__ import annotations

import logging
from pathlib import Path

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


def _rotating(tmp_path, text: str, errors: list[int]) -> tuple[AccessControl, Path]:
    path = tmp_path / "keys"
    path.write_text(text)
    keys = load_keys(path, {})
    access = AccessControl(keys, 1.0, 2, key_file=path, on_error=lambda: errors.append(1))
    return access, path


def test_a_changed_key_file_adds_and_revokes_keys(tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO)
    errors: list[int] = []
    access, path = _rotating(tmp_path, f"alice:{ALICE}\n", errors)
    assert not access.refresh()  # unchanged: nothing read again
    path.write_text(f"bob:{BOB}\n")
    assert access.refresh()
    assert access.authenticate(BOB) == "bob"
    with pytest.raises(Unauthenticated):
        access.authenticate(ALICE)
    access.admit("bob", now=1.0)  # the new key has a bucket of its own
    assert "added: bob; removed: alice" in caplog.text and BOB not in caplog.text
    assert errors == []


def test_a_bad_edit_keeps_the_keys_in_force_and_is_counted(tmp_path, caplog) -> None:
    errors: list[int] = []
    access, path = _rotating(tmp_path, f"alice:{ALICE}\n", errors)
    for bad in (f"alice:{ALICE}\nbob:short-key\n", f"alice:{ALICE}\ncarol:{ALICE}\n", b"\xff\xfe"):
        if isinstance(bad, bytes):
            path.write_bytes(bad)
        else:
            path.write_text(bad)
        assert not access.refresh()
        assert access.authenticate(ALICE) == "alice"
    path.unlink()  # gone: unusable too
    assert not access.refresh()
    assert access.authenticate(ALICE) == "alice"
    assert len(errors) == 4
    assert "keeping the 1 API keys in force" in caplog.text and ALICE not in caplog.text


def test_an_emptied_key_file_revokes_every_key_and_opens_nothing(tmp_path) -> None:
    access, path = _rotating(tmp_path, f"alice:{ALICE}\n", [])
    path.write_text("# no keys for now\n")
    assert access.refresh()
    for presented in (None, ALICE):
        with pytest.raises(Unauthenticated):
            access.authenticate(presented)
