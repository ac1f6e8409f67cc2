"""Applying the Alembic migrations at start-up, inside one write transaction."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from r2v.db.connect import Database

MIGRATIONS = Path(__file__).parent / "migrations"


# Any number fixed for r2v: the advisory lock that serializes migrations on PostgreSQL.
_MIGRATION_LOCK = 0x72327600


def upgrade(database: Database) -> None:
    """Bring the schema to the newest revision; concurrent starters wait for each other.

    SQLite's BEGIN IMMEDIATE and PostgreSQL's transaction-scoped advisory lock make a
    second process starting at the same moment wait, then find nothing left to do.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with database.write.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
            )
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
