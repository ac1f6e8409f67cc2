"""Alembic environment: runs on the connection r2v hands it (see r2v.db.migrate)."""

from __future__ import annotations

from alembic import context

from r2v.db.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("r2v migrations run through `r2v.db.migrate.upgrade`, on a connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things in place; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
