"""The SQL adapter of the key store."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from r2v.db.connect import Database
from r2v.db.schema import api_keys
from r2v.tasks.ports import ApiKey

KEYS_CHANNEL = "r2v_keys"
"""The PostgreSQL channel a NOTIFY on it says: a key was revoked."""


class SqlKeyStore:
    """`KeyStore` over SQLAlchemy Core."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def insert_key(self, key: ApiKey) -> None:
        with self._db.write.begin() as conn:
            conn.execute(api_keys.insert().values(**key.__dict__))

    def _one(self, where: sa.ColumnElement[bool]) -> ApiKey | None:
        with self._db.read.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(where)).first()
        return ApiKey(**row._mapping) if row is not None else None

    def find_key(self, key_hash: str) -> ApiKey | None:
        return self._one(api_keys.c.key_hash == key_hash)

    def get_key(self, key_id: str) -> ApiKey | None:
        return self._one(api_keys.c.id == key_id)

    def list_keys(self) -> list[ApiKey]:
        with self._db.read.connect() as conn:
            rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at)).all()
        return [ApiKey(**row._mapping) for row in rows]

    def revoke_key(self, key_id: str, now: float) -> bool:
        with self._db.write.begin() as conn:
            result = conn.execute(
                api_keys.update()
                .where(
                    sa.or_(api_keys.c.id == key_id, api_keys.c.name == key_id),
                    api_keys.c.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            )
            if result.rowcount and self._db.dialect == "postgresql":
                # every process drops the keys it trusts from memory at once
                conn.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": KEYS_CHANNEL})
        return result.rowcount > 0

    def revision(self) -> float:
        with self._db.read.connect() as conn:
            latest = conn.execute(sa.select(sa.func.max(api_keys.c.revoked_at))).scalar()
        return float(latest or 0.0)

    def update_key_limits(
        self, key_id: str, rate_per_minute: int | None, max_unfinished: int | None
    ) -> bool:
        values: dict[str, Any] = {}
        if rate_per_minute is not None:
            values["rate_per_minute"] = rate_per_minute
        if max_unfinished is not None:
            values["max_unfinished"] = max_unfinished
        with self._db.write.begin() as conn:
            if not values:
                row = conn.execute(sa.select(api_keys.c.id).where(api_keys.c.id == key_id))
                return row.first() is not None
            result = conn.execute(api_keys.update().where(api_keys.c.id == key_id).values(values))
        return result.rowcount > 0
