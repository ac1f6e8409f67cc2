"""The SQL adapter of the gateway's view of upstream tasks (the `UpstreamStore` port).

One gateway follows hundreds of upstream tasks, so what a render worker does per task is
done here per owner: a claim takes a batch, and one statement renews every lease it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from r2v.db.connect import Database
from r2v.db.schema import tasks
from r2v.db.store import PROCESSING, claiming, fenced, to_record
from r2v.tasks.record import TaskRecord

UPSTREAM_CHANNEL = "r2v_upstream"
"""The PostgreSQL channel whose payload is a task id: the upstream has news of that task."""


class SqlUpstreamStore:
    """`UpstreamStore` over SQLAlchemy Core."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def claim_upstream(
        self, owner: str, lease_seconds: float, now: float, models: Sequence[str], limit: int
    ) -> list[TaskRecord]:
        statement = claiming(
            owner,
            lease_seconds,
            now,
            models,
            limit,
            upstream_state=sa.func.coalesce(tasks.c.upstream_state, "preparing"),
        )
        with self._db.write.begin() as conn:
            rows = conn.execute(statement).all()
        return sorted(map(to_record, rows), key=lambda record: (record.created_at, record.id))

    def held(self, owner: str) -> dict[str, int]:
        query = sa.select(tasks.c.id, tasks.c.attempt).where(
            tasks.c.lease_owner == owner, tasks.c.status == PROCESSING
        )
        with self._db.read.connect() as conn:
            return {row.id: row.attempt for row in conn.execute(query)}

    def renew(self, owner: str, lease_expires_at: float) -> dict[str, int]:
        statement = (
            tasks.update()
            .where(tasks.c.lease_owner == owner, tasks.c.status == PROCESSING)
            .values(lease_expires_at=lease_expires_at)
            .returning(tasks.c.id, tasks.c.attempt)
        )
        with self._db.write.begin() as conn:
            return {row.id: row.attempt for row in conn.execute(statement)}

    def set_upstream(
        self,
        task_id: str,
        attempt: int,
        *,
        state: str | None = None,
        target: str | None = None,
        ref: str | None = None,
        since: float | None = None,
        usage: str | None = None,
        seed: int | None = None,
        progress: int | None = None,
    ) -> bool:
        values: dict[str, Any] = {
            name: value
            for name, value in (
                ("upstream_state", state),
                ("upstream_target", target),
                ("upstream_ref", ref),
                ("upstream_usage", usage),
                ("seed", seed),
            )
            if value is not None
        }
        if since is not None:
            values["upstream_since"] = sa.func.coalesce(tasks.c.upstream_since, since)
        if progress is not None:
            values["progress"] = sa.case(
                (tasks.c.progress < progress, progress), else_=tasks.c.progress
            )
        if not values:
            return True
        with self._db.write.begin() as conn:
            result = conn.execute(tasks.update().where(fenced(task_id, attempt)).values(values))
        return result.rowcount > 0

    def hint(self, task_id: str) -> None:
        if self._db.dialect != "postgresql":
            return
        with self._db.write.begin() as conn:
            conn.execute(
                sa.text("SELECT pg_notify(:channel, :task_id)"),
                {"channel": UPSTREAM_CHANNEL, "task_id": task_id},
            )
