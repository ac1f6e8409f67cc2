"""Applying the Alembic migrations at start-up, inside one write transaction."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from r2v.db.connect import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def upgrade(database: Database) -> None:
    """Bring the schema to the newest revision; concurrent starters wait for each other."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with database.write.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
