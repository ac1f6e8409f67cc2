"""API keys: created once and shown once, stored only as a SHA-256 hash.

Keys carry 256 bits of randomness, so a plain SHA-256 is the right hash: a slow password
hash would buy nothing and would cost every request.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from r2v.errors import AuthenticationFailed
from r2v.tasks.ports import ApiKey, KeyLimits, KeyStore

KEY_PREFIX = "r2v_"


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_webhook_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@dataclass(frozen=True)
class CreatedKey:
    """A newly created key: `secret` is the only time the key itself exists anywhere."""

    key: ApiKey
    secret: str

    @property
    def webhook_secret(self) -> str:
        return self.key.webhook_secret or ""


class KeyService:
    """Creates, lists, revokes and checks API keys, and knows each key's limits."""

    def __init__(
        self,
        store: KeyStore,
        defaults: KeyLimits | None = None,
        clock: Callable[[], float] = time.time,
        *,
        cache_seconds: float = 5.0,
    ) -> None:
        self._store = store
        self._defaults = defaults or KeyLimits(rate_per_minute=60, burst=20, max_unfinished=120)
        self._clock = clock
        # Pollers authenticate on every request: a key found stays trusted this long, so a
        # revocation elsewhere takes effect within `cache_seconds` (here, at once).
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[ApiKey, float]] = {}
        self._cache_lock = threading.Lock()

    def create(
        self,
        name: str = "default",
        *,
        rate_per_minute: int | None = None,
        max_unfinished: int | None = None,
    ) -> CreatedKey:
        """A new active key named `name`, with its own limits when given."""
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(
            id="key_" + secrets.token_hex(6),
            name=name,
            prefix=secret[: len(KEY_PREFIX) + 6],
            key_hash=hash_key(secret),
            created_at=self._clock(),
            webhook_secret=new_webhook_secret(),
            rate_per_minute=rate_per_minute,
            max_unfinished=max_unfinished,
        )
        self._store.insert_key(key)
        return CreatedKey(key, secret)

    def update_limits(
        self, key_id: str, *, rate_per_minute: int | None, max_unfinished: int | None
    ) -> bool:
        """Set a key's own limits; None leaves one as it is. False when there is no such key."""
        updated = self._store.update_key_limits(key_id, rate_per_minute, max_unfinished)
        with self._cache_lock:
            self._cache.clear()
        return updated

    def get(self, key_id: str) -> ApiKey | None:
        return self._store.get_key(key_id)

    def limits(self, key: ApiKey) -> KeyLimits:
        """The limits a key's requests are held to: its own, else the server's."""
        defaults = self._defaults
        rate = key.rate_per_minute or defaults.rate_per_minute
        return KeyLimits(
            rate_per_minute=rate,
            # a key with its own rate gets a burst in proportion, never above the default's
            burst=defaults.burst
            if key.rate_per_minute is None
            else max(1, min(rate, defaults.burst)),
            max_unfinished=key.max_unfinished or defaults.max_unfinished,
        )

    def list(self) -> list[ApiKey]:
        """Every key, oldest first, revoked ones included."""
        return self._store.list_keys()

    def has_active(self) -> bool:
        return any(key.revoked_at is None for key in self._store.list_keys())

    def revoke(self, key_id_or_name: str) -> bool:
        """Revoke the active key with this id or name; False when there is none."""
        revoked = self._store.revoke_key(key_id_or_name, self._clock())
        self.forget()
        return revoked

    def forget(self) -> None:
        """Drop every key trusted from memory: a key was revoked (here or elsewhere)."""
        with self._cache_lock:
            self._cache.clear()

    def watch_revocations(self, stop: threading.Event, every: float = 1.0) -> None:
        """Until `stop`, look for revocations made by other processes every `every` seconds
        and forget the trusted keys when there is one."""
        seen = self._store.revision()
        while not stop.wait(every):
            try:
                latest = self._store.revision()
            except Exception:  # the database is away: the cache expires on its own
                continue
            if latest != seen:
                seen = latest
                self.forget()

    def cached(self, authorization: str | None) -> ApiKey | None:
        """The key for this header if it was checked moments ago: no I/O, for hot paths."""
        scheme, _, secret = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return None
        with self._cache_lock:
            found = self._cache.get(hash_key(secret.strip()))
        return found[0] if found is not None and found[1] > time.monotonic() else None

    def authenticate(self, authorization: str | None) -> ApiKey:
        """The active key named by an `Authorization: Bearer <key>` header value."""
        if not authorization:
            raise AuthenticationFailed(
                "missing API key: send the header 'Authorization: Bearer <key>' "
                "(create a key with `r2v keys create`)"
            )
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise AuthenticationFailed("the Authorization header must be 'Bearer <key>'")
        digest = hash_key(secret.strip())
        now = time.monotonic()
        with self._cache_lock:
            cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        key = self._store.find_key(digest)
        if key is None or key.revoked_at is not None:
            raise AuthenticationFailed("this API key is not valid: it is unknown or revoked")
        with self._cache_lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (key, now + self._cache_seconds)
        return key
