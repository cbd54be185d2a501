"""API keys and per-key rate limits, shared by the REST and gRPC adapters.

Keys come from a file (``name:key`` per line, optionally followed by its scopes:
``name:key admin`` or ``name:key inference,admin``) and/or ``MNIST_API_KEYS`` (JSON
``{"name": "key"}``). A key without scopes has ``inference`` (every API); ``admin`` lets it
steer a rollout too.
With neither, every request is let through; with a keys file, keys are required even while the
file holds none (emptying it revokes every key, it does not open the gateway). The file is
re-read when it changes (:meth:`AccessControl.refresh`, called every poll interval by the
gateway): a new key works and a removed one is refused from then on; an edit that cannot be used
is logged and counted, and the keys in force stay. Keys are compared in constant time and never
logged (a message names a line number or a key's name, never a key); a refusal says only that
the key is missing or wrong.

Each key name has a token bucket (``rate_limit_per_second``, burst ``rate_limit_burst``), one
for the whole gateway even with several worker processes: the buckets live in a table of
:data:`KEY_SLOTS` slots in :class:`~mnist_serving.shared_state.SharedFloats`, a name's slot
found by its hash, so every worker finds the same slot for a name whatever keys it has read so
far. An empty bucket is a :class:`RateLimited` with the wait until the next token as
``Retry-After``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections.abc import Callable, Mapping
from multiprocessing.context import BaseContext
from pathlib import Path

from mnist_serving.errors import PermissionDenied, RateLimited, Unauthenticated
from mnist_serving.shared_state import SharedFloats

log = logging.getLogger(__name__)
ANONYMOUS = "anonymous"  # the one bucket every caller shares when no keys are configured
KEY_SLOTS = 4096  # key names the rate-limit table holds (revoked names keep their slot)
_SLOT_FLOATS = 3  # a slot: the name's hash (0: empty), tokens, last refill


SCOPES = ("inference", "admin")
DEFAULT_SCOPES = frozenset({"inference"})


class KeyFileError(ValueError):
    pass


def load_keys(path: Path | None, inline: Mapping[str, str]) -> dict[str, str]:
    """name → key from the file and the inline mapping; duplicate names or keys are refused."""
    return {name: key for name, (key, _) in load_scoped_keys(path, inline).items()}


def load_scoped_keys(
    path: Path | None, inline: Mapping[str, str]
) -> dict[str, tuple[str, frozenset[str]]]:
    """name → (key, scopes) from the file and the inline mapping (whose keys have the
    default scope); duplicate names or keys are refused."""
    keys = {name: (key, DEFAULT_SCOPES) for name, key in inline.items()}
    if path is not None:
        try:
            lines = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise KeyFileError(f"{path}: cannot read API keys ({reason})") from None
        for number, line in enumerate(lines, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, rest = line.partition(":")
            key, _, scoped = rest.strip().partition(" ")
            if not sep or not name.strip() or len(key) < 16:
                raise KeyFileError(
                    f"{path}:{number}: expected 'name:key' with a key of at least 16 characters"
                )
            keys[name.strip()] = (key, _scopes(scoped, f"{path}:{number}"))
    if len({key for key, _ in keys.values()}) != len(keys):
        raise KeyFileError("two API key names share the same key")
    if len(keys) > KEY_SLOTS // 2:
        raise KeyFileError(f"{len(keys)} API keys; the gateway holds at most {KEY_SLOTS // 2}")
    return keys


def _scopes(text: str, where: str) -> frozenset[str]:
    if not text.strip():
        return DEFAULT_SCOPES
    scopes = frozenset(s.strip() for s in text.split(",") if s.strip())
    unknown = sorted(scopes - set(SCOPES))
    if unknown:
        raise KeyFileError(f"{where}: unknown scope(s) {', '.join(unknown)}; choose from {SCOPES}")
    return scopes


def token_buckets(context: BaseContext | None = None) -> SharedFloats:
    """An empty table of rate-limit buckets; shared by worker processes when made with their
    multiprocessing ``context``."""
    return SharedFloats(_SLOT_FLOATS * KEY_SLOTS, context=context)


def _name_hash(name: str) -> float:
    """A key name as a nonzero whole number a float holds exactly (52 bits)."""
    digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    return float((digest & ((1 << 52) - 1)) or 1)


class AccessControl:
    def __init__(
        self,
        keys: Mapping[str, str],
        rate_per_second: float,
        burst: int,
        buckets: SharedFloats | None = None,
        *,
        key_file: Path | None = None,
        inline: Mapping[str, str] | None = None,
        on_error: Callable[[], None] | None = None,
        scopes: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        self.rate = rate_per_second
        self.burst = max(1, burst)
        self._buckets = buckets if buckets is not None else token_buckets()
        self._key_file = key_file
        self._inline = dict(inline or {})
        self._on_error = on_error or (lambda: None)
        self._file_text = _read_text(key_file)
        self._keys: list[tuple[str, bytes]] = []
        self._scopes: dict[str, frozenset[str]] = {}
        self._slots: dict[str, int] = {}
        self.enabled = False
        given = scopes or {}
        self._use({name: (key, given.get(name, DEFAULT_SCOPES)) for name, key in keys.items()})

    def _use(self, keys: Mapping[str, tuple[str, frozenset[str]]]) -> None:
        self._keys = [(name, key.encode()) for name, (key, _) in keys.items()]
        self._scopes = {name: scopes for name, (_, scopes) in keys.items()}
        # A keys file means keys are required, even while it holds none.
        self.enabled = bool(self._keys) or self._key_file is not None
        names = list(keys) if self.enabled else [ANONYMOUS]
        self._slots = {name: self._slot(name) for name in names}

    def _slot(self, name: str) -> int:
        """The name's slot in the bucket table, claimed (with a full bucket) if it is new."""
        wanted = _name_hash(name)
        table = self._buckets
        with table.lock:
            for probe in range(KEY_SLOTS):
                slot = (int(wanted) + probe) % KEY_SLOTS * _SLOT_FLOATS
                held = table.values[slot]
                if held == wanted:
                    return slot
                if held == 0.0:
                    table.values[slot] = wanted
                    table.values[slot + 1] = float(self.burst)
                    table.values[slot + 2] = 0.0
                    return slot
        raise KeyFileError(f"the rate-limit table's {KEY_SLOTS} slots are all taken")

    def refresh(self) -> bool:
        """Re-read the keys file if it changed; whether the keys in force changed. An edit that
        cannot be used is logged and counted, and the keys in force stay."""
        if self._key_file is None:
            return False
        text = _read_text(self._key_file)
        if text == self._file_text:
            return False
        self._file_text = text
        before = {name for name, _ in self._keys}
        try:
            keys = load_scoped_keys(self._key_file, self._inline)
            self._use(keys)
        except KeyFileError as exc:
            self._on_error()
            log.error("%s; keeping the %d API keys in force", exc, len(before))
            return False
        added, removed = sorted(set(keys) - before), sorted(before - set(keys))
        log.info(
            "API keys reloaded from %s: %d in force (added: %s; removed: %s)",
            self._key_file,
            len(keys),
            ", ".join(added) or "none",
            ", ".join(removed) or "none",
        )
        return True

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

    def require(self, name: str, scope: str) -> None:
        """:class:`PermissionDenied` unless key ``name`` has ``scope``; with no keys at all,
        only ``inference`` is open (admin needs a key that says so)."""
        scopes = self._scopes.get(name, DEFAULT_SCOPES if not self.enabled else frozenset())
        if scope not in scopes:
            if not self.enabled:
                raise PermissionDenied(
                    f"{scope} operations need an API key with the {scope} scope "
                    "(--api-keys-file, 'name:key admin'); no key is configured"
                )
            raise PermissionDenied(f"API key {name!r} lacks the {scope} scope")

    def admit(self, name: str, now: float | None = None) -> None:
        """Take one token from ``name``'s bucket, or raise :class:`RateLimited`."""
        if self.rate <= 0:
            return
        now = time.monotonic() if now is None else now
        slot, buckets = self._slots[name] + 1, self._buckets
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


def _read_text(path: Path | None) -> bytes | None:
    """The file's bytes, to notice an edit (None when there is no file or it cannot be read)."""
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError:
        return None


def bearer_or_api_key(authorization: str | None, api_key: str | None) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return api_key.strip() if api_key else None
