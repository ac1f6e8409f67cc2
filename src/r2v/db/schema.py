"""The tables, as SQLAlchemy Core metadata shared by the store and the migrations."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("prefix", sa.String(32), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float, nullable=True),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("key_id", sa.String(32), nullable=False),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("progress", sa.Integer, nullable=False, server_default="0"),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("video_duration", sa.Integer, nullable=False),
    sa.Column("estimated_time", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_expires_at", sa.Float, nullable=True),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("result_key", sa.String(200), nullable=True),
    sa.Column("result_expires_at", sa.Float, nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
    # the claim query: oldest pending first
    sa.Index("ix_tasks_status_created", "status", "created_at"),
    # a key's tasks, newest first
    sa.Index("ix_tasks_key_created", "key_id", "created_at"),
    # the reaper: processing rows by lease expiry
    sa.Index("ix_tasks_status_lease", "status", "lease_expires_at"),
    # retention: completed results by expiry
    sa.Index("ix_tasks_result_expires", "result_expires_at"),
)

files = sa.Table(
    "files",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("key_id", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("format", sa.String(16), nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("filename", sa.String(255), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("deleted_at", sa.Float, nullable=True),
    # retention: live uploads by expiry
    sa.Index("ix_files_expires", "deleted_at", "expires_at"),
)
