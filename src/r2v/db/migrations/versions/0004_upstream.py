"""The upstream engine: the upstream task a task was sent to, its state and usage.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("upstream_state", sa.String(16), nullable=True))
    op.add_column("tasks", sa.Column("upstream_target", sa.Text, nullable=True))
    op.add_column("tasks", sa.Column("upstream_ref", sa.String(200), nullable=True))
    op.add_column("tasks", sa.Column("upstream_since", sa.Float, nullable=True))
    op.add_column("tasks", sa.Column("upstream_usage", sa.Text, nullable=True))
    op.create_index("ix_tasks_lease_owner", "tasks", ["lease_owner"])


def downgrade() -> None:
    op.drop_index("ix_tasks_lease_owner", "tasks")
    with op.batch_alter_table("tasks") as batch:
        for column in (
            "upstream_usage",
            "upstream_since",
            "upstream_ref",
            "upstream_target",
            "upstream_state",
        ):
            batch.drop_column(column)
