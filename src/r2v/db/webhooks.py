"""The SQL adapter of the webhook outbox.

A delivery row is written in the same transaction that makes its task terminal (see
`enqueue_webhooks`), so a finished task's webhook is never lost to a crash in between; the
sender claims due rows the way workers claim tasks, and records every try.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from r2v.db.connect import Database
from r2v.db.schema import tasks, webhook_attempts, webhook_deliveries
from r2v.tasks.ports import Delivery, DeliveryAttempt

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


def enqueue_webhooks(conn: sa.Connection, task_ids: Sequence[str], now: float) -> None:
    """Queue one delivery for each of these (now terminal) tasks that asked for a callback.

    The delivery id is derived from the task id: a task ends once, so it has one webhook,
    and a repeated enqueue is a no-op.
    """
    if not task_ids:
        return
    delivery_id = sa.literal("msg_") + tasks.c.id
    already = sa.select(webhook_deliveries.c.id).where(webhook_deliveries.c.id == delivery_id)
    source = sa.select(
        delivery_id,
        tasks.c.id,
        tasks.c.key_id,
        tasks.c.callback_url,
        sa.literal(PENDING),
        sa.literal(0),
        sa.literal(now),
        sa.literal(now),
    ).where(
        tasks.c.id.in_(list(task_ids)),
        tasks.c.callback_url.is_not(None),
        ~sa.exists(already),
    )
    conn.execute(
        webhook_deliveries.insert().from_select(
            [
                "id",
                "task_id",
                "key_id",
                "url",
                "status",
                "attempts",
                "next_attempt_at",
                "created_at",
            ],
            source,
        )
    )


class SqlWebhookStore:
    """`WebhookStore` over SQLAlchemy Core."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def claim_deliveries(self, now: float, limit: int, lease_seconds: float) -> list[Delivery]:
        due = (
            sa.select(webhook_deliveries.c.id)
            .where(
                webhook_deliveries.c.status == PENDING,
                webhook_deliveries.c.next_attempt_at <= now,
            )
            .order_by(webhook_deliveries.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte("due")
            .prefix_with("MATERIALIZED")  # run once: the rows locked are the rows updated
        )
        statement = (
            webhook_deliveries.update()
            .where(webhook_deliveries.c.id.in_(sa.select(due.c.id)))
            .values(next_attempt_at=now + lease_seconds)
            .returning(*webhook_deliveries.columns)
        )
        with self._db.write.begin() as conn:
            rows = conn.execute(statement).all()
        return [Delivery(**row._mapping) for row in rows]

    def postpone(self, delivery_id: str, next_attempt_at: float) -> None:
        with self._db.write.begin() as conn:
            conn.execute(
                webhook_deliveries.update()
                .where(
                    webhook_deliveries.c.id == delivery_id,
                    webhook_deliveries.c.status == PENDING,
                )
                .values(next_attempt_at=next_attempt_at)
            )

    def record_attempt(
        self,
        attempt: DeliveryAttempt,
        *,
        delivered: bool,
        next_attempt_at: float | None,
    ) -> None:
        if delivered:
            status, finished = DELIVERED, attempt.at
        elif next_attempt_at is None:
            status, finished = FAILED, attempt.at
        else:
            status, finished = PENDING, None
        with self._db.write.begin() as conn:
            conn.execute(webhook_attempts.insert().values(**attempt.__dict__))
            conn.execute(
                webhook_deliveries.update()
                .where(webhook_deliveries.c.id == attempt.delivery_id)
                .values(
                    status=status,
                    attempts=attempt.attempt,
                    next_attempt_at=next_attempt_at if next_attempt_at is not None else attempt.at,
                    last_status_code=attempt.status_code,
                    last_error=attempt.error,
                    finished_at=finished,
                )
            )

    def deliveries(self, task_id: str) -> list[Delivery]:
        query = sa.select(webhook_deliveries).where(webhook_deliveries.c.task_id == task_id)
        with self._db.read.connect() as conn:
            return [Delivery(**row._mapping) for row in conn.execute(query)]

    def attempts(self, delivery_id: str) -> list[DeliveryAttempt]:
        query = (
            sa.select(webhook_attempts)
            .where(webhook_attempts.c.delivery_id == delivery_id)
            .order_by(webhook_attempts.c.attempt)
        )
        with self._db.read.connect() as conn:
            rows = conn.execute(query).all()
        return [
            DeliveryAttempt(**{k: v for k, v in row._mapping.items() if k != "id"}) for row in rows
        ]
