"""API keys: created once and shown once, stored only as a SHA-256 hash.

Keys carry 256 bits of randomness, so a plain SHA-256 is the right hash: a slow password
hash would buy nothing and would cost every request.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from r2v.errors import AuthenticationFailed
from r2v.tasks.ports import ApiKey, KeyStore

KEY_PREFIX = "r2v_"


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class CreatedKey:
    """A newly created key: `secret` is the only time the key itself exists anywhere."""

    key: ApiKey
    secret: str


class KeyService:
    """Creates, lists, revokes and checks API keys."""

    def __init__(self, store: KeyStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    def create(self, name: str = "default") -> CreatedKey:
        """A new active key named `name`."""
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(
            id="key_" + secrets.token_hex(6),
            name=name,
            prefix=secret[: len(KEY_PREFIX) + 6],
            key_hash=hash_key(secret),
            created_at=self._clock(),
        )
        self._store.insert_key(key)
        return CreatedKey(key, secret)

    def list(self) -> list[ApiKey]:
        """Every key, oldest first, revoked ones included."""
        return self._store.list_keys()

    def has_active(self) -> bool:
        return any(key.revoked_at is None for key in self._store.list_keys())

    def revoke(self, key_id_or_name: str) -> bool:
        """Revoke the active key with this id or name; False when there is none."""
        return self._store.revoke_key(key_id_or_name, self._clock())

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
        key = self._store.find_key(hash_key(secret.strip()))
        if key is None or key.revoked_at is not None:
            raise AuthenticationFailed("this API key is not valid: it is unknown or revoked")
        return key
