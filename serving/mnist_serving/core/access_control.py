"""API keys and per-key rate limits, shared by the REST and gRPC adapters.

Keys come from a file (``name:key`` per line) and/or ``MNIST_API_KEYS`` (JSON ``{"name": "key"}``).
With no keys configured, every request is let through. Keys are compared in constant time and
never logged; a refusal says only that the key is missing or wrong. Each key has a token bucket
(``rate_limit_per_second``, burst ``rate_limit_burst``), one for the whole gateway even with
several worker processes (:mod:`mnist_serving.shared_state`); an empty bucket is a
:class:`RateLimited` with the wait until the next token as ``Retry-After``.
"""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Mapping
from multiprocessing.context import BaseContext
from pathlib import Path

from mnist_serving.errors import RateLimited, Unauthenticated
from mnist_serving.shared_state import SharedFloats


class KeyFileError(ValueError):
    pass


def load_keys(path: Path | None, inline: Mapping[str, str]) -> dict[str, str]:
    """name → key from the file and the inline mapping; duplicate names or keys are refused."""
    keys: dict[str, str] = dict(inline)
    if path is not None:
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise KeyFileError(f"{path}: cannot read API keys ({exc.strerror or exc})") from None
        for number, line in enumerate(lines, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, key = line.partition(":")
            if not sep or not name.strip() or len(key.strip()) < 16:
                raise KeyFileError(
                    f"{path}:{number}: expected 'name:key' with a key of at least 16 characters"
                )
            keys[name.strip()] = key.strip()
    if len(set(keys.values())) != len(keys):
        raise KeyFileError("two API key names share the same key")
    return keys


ANONYMOUS = "anonymous"  # the one bucket every caller shares when no keys are configured


def bucket_names(keys: Mapping[str, str]) -> list[str]:
    """The token buckets there are: one per key name, or the anonymous one."""
    return list(keys) or [ANONYMOUS]


def token_buckets(
    keys: Mapping[str, str], burst: int, context: BaseContext | None = None
) -> SharedFloats:
    """Full buckets (tokens, last refill) for :func:`bucket_names`; shared by worker processes
    when made with their multiprocessing ``context``."""
    buckets = SharedFloats(2 * len(bucket_names(keys)), context=context)
    for slot in range(0, len(buckets.values), 2):
        buckets.values[slot] = float(max(1, burst))
    return buckets


class AccessControl:
    def __init__(
        self,
        keys: Mapping[str, str],
        rate_per_second: float,
        burst: int,
        buckets: SharedFloats | None = None,
    ) -> None:
        self._keys = [(name, key.encode()) for name, key in keys.items()]
        self.enabled = bool(self._keys)
        self.rate = rate_per_second
        self.burst = max(1, burst)
        self._slots = {name: 2 * i for i, name in enumerate(bucket_names(keys))}
        self._buckets = buckets if buckets is not None else token_buckets(keys, self.burst)

    def authenticate(self, presented: str | None) -> str:
        """The key's name, or :class:`Unauthenticated`. Every key is compared, in constant time."""
        if not self.enabled:
            return ANONYMOUS
        if not presented:
            raise Unauthenticated("missing API key (send Authorization: Bearer <key>)")
        candidate = presented.encode()
        found = None
        for name, key in self._keys:
            if hmac.compare_digest(candidate, key):
                found = name
        if found is None:
            raise Unauthenticated("invalid API key")
        return found

    def admit(self, name: str, now: float | None = None) -> None:
        """Take one token from ``name``'s bucket, or raise :class:`RateLimited`."""
        if self.rate <= 0:
            return
        now = time.monotonic() if now is None else now
        slot, buckets = self._slots[name], self._buckets
        with buckets.lock:
            tokens, updated = buckets.values[slot], buckets.values[slot + 1]
            tokens = min(self.burst, tokens + max(0.0, now - updated) * self.rate)
            buckets.values[slot + 1] = now
            if tokens >= 1:
                buckets.values[slot] = tokens - 1
                return
            buckets.values[slot] = tokens
            wait = (1 - tokens) / self.rate
        raise RateLimited(
            f"rate limit of {self.rate:g} requests/s exceeded", retry_after=max(1, math.ceil(wait))
        )


def bearer_or_api_key(authorization: str | None, api_key: str | None) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return api_key.strip() if api_key else None
