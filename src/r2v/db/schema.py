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
    sa.Column("webhook_secret", sa.String(64), nullable=True),
    sa.Column("rate_per_minute", sa.Integer, nullable=True),
    sa.Column("max_unfinished", sa.Integer, nullable=True),
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
    sa.Column("callback_url", sa.Text, nullable=True),
    sa.Column("base_url", sa.String(500), nullable=True),
    # the upstream engine: where the task went, and how it is doing there
    sa.Column("upstream_state", sa.String(16), nullable=True),
    sa.Column("upstream_target", sa.Text, nullable=True),
    sa.Column("upstream_ref", sa.String(200), nullable=True),
    sa.Column("upstream_since", sa.Float, nullable=True),
    sa.Column("upstream_usage", sa.Text, nullable=True),
    # the size of the finished video (an `adaptive` ratio is decided while rendering)
    sa.Column("video_width", sa.Integer, nullable=True),
    sa.Column("video_height", sa.Integer, nullable=True),
    # the task this one remixes (OpenAI's `remixed_from_video_id`)
    sa.Column("remixed_from", sa.String(40), nullable=True),
    # what the engine made of the request (storyboard, warnings) as JSON, once completed
    sa.Column("render_summary", sa.Text, nullable=True),
    # the claim query: oldest pending first
    sa.Index("ix_tasks_status_created", "status", "created_at"),
    # a key's tasks, newest first
    sa.Index("ix_tasks_key_created", "key_id", "created_at"),
    # the reaper: processing rows by lease expiry
    sa.Index("ix_tasks_status_lease", "status", "lease_expires_at"),
    # retention: completed results by expiry
    sa.Index("ix_tasks_result_expires", "result_expires_at"),
    # a key's unfinished tasks, counted against its cap
    sa.Index("ix_tasks_key_status", "key_id", "status"),
    # the upstream gateway: the tasks one process holds, checked every half second
    sa.Index("ix_tasks_lease_owner", "lease_owner"),
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

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("idempotency_key", sa.String(255), primary_key=True),
    sa.Column("body_hash", sa.String(64), nullable=False),
    sa.Column("task_id", sa.String(40), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

rate_buckets = sa.Table(
    "rate_buckets",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("tokens", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
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
    # the sender's claim: due pending deliveries first
    sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
)

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("delivery_id", sa.String(48), nullable=False, index=True),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("duration_ms", sa.Integer, nullable=False),
)
