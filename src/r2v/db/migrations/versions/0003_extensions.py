"""API extensions: callbacks, idempotency, per-key limits, webhook deliveries.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("webhook_secret", sa.String(64), nullable=True))
    op.add_column("api_keys", sa.Column("rate_per_minute", sa.Integer, nullable=True))
    op.add_column("api_keys", sa.Column("max_unfinished", sa.Integer, nullable=True))
    op.add_column("tasks", sa.Column("callback_url", sa.Text, nullable=True))
    op.add_column("tasks", sa.Column("base_url", sa.String(500), nullable=True))
    op.create_index("ix_tasks_key_status", "tasks", ["key_id", "status"])
    op.create_table(
        "idempotency_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("idempotency_key", sa.String(255), primary_key=True),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("task_id", sa.String(40), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "rate_buckets",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(48), primary_key=True),
        sa.Column("task_id", sa.String(40), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("last_status_code", sa.Integer, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=True),
    )
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"]
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(48), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("duration_ms", sa.Integer, nullable=False),
    )
    op.create_index("ix_webhook_attempts_delivery_id", "webhook_attempts", ["delivery_id"])


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("rate_buckets")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_tasks_key_status", "tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("base_url")
        batch.drop_column("callback_url")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("max_unfinished")
        batch.drop_column("rate_per_minute")
        batch.drop_column("webhook_secret")
