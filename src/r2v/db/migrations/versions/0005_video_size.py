"""What the other doors report: a finished video's size, and the task a remix came from.

Ark reports the ratio produced, OpenAI the size; OpenAI's remixes name their source.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("video_width", sa.Integer, nullable=True))
    op.add_column("tasks", sa.Column("video_height", sa.Integer, nullable=True))
    op.add_column("tasks", sa.Column("remixed_from", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("remixed_from")
        batch.drop_column("video_height")
        batch.drop_column("video_width")
