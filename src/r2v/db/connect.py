"""Opening the database: one URL decides SQLite or PostgreSQL, and this module tunes each.

SQLite runs in WAL mode with a busy timeout. Writes open with `BEGIN IMMEDIATE`, taking the
write lock up front: a deferred transaction that reads, then writes, can fail at once with
SQLITE_BUSY when another writer got there first, whatever the busy timeout says. Reads use a
second engine in autocommit (each read is one statement), so they never queue behind the
writer and cost no BEGIN/COMMIT round of their own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url


@dataclass(frozen=True)
class Database:
    """The engines of one database: `write` for transactions that write, `read` for reads."""

    write: sa.Engine
    read: sa.Engine

    @property
    def dialect(self) -> str:
        return self.write.dialect.name

    def dispose(self) -> None:
        self.write.dispose()
        if self.read is not self.write:
            self.read.dispose()


def _sqlite_engine(url: str, *, writes: bool) -> sa.Engine:
    # Enough pooled connections for every thread of the server's thread pool (40): an
    # overflow connection is opened and closed per use, and its PRAGMAs cost more than the
    # query it serves.
    engine = sa.create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=48 if not writes else 16,
        max_overflow=16,
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver, so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    if writes:

        @sa.event.listens_for(engine, "begin")
        def _on_begin(connection: sa.Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    # Reads emit no BEGIN at all: each is one statement, atomic on its own snapshot.
    return engine


def _owner_only(path: Path) -> None:
    """Make the SQLite file (and its directory, when new) readable by this user alone: it
    holds every key's webhook secret. SQLite gives its -wal and -shm files the same mode."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if file.exists():
                file.chmod(0o600)


def open_database(url: str, pool_size: int = 5, max_overflow: int = 10) -> Database:
    """Engines for the database at `url`, creating the SQLite file's directory if needed."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _owner_only(Path(parsed.database))
        return Database(
            write=_sqlite_engine(url, writes=True),
            read=_sqlite_engine(url, writes=False),
        )
    engine = sa.create_engine(
        url,
        # a connection the server dropped (a restart, a failover) is replaced, not used
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
    )
    return Database(write=engine, read=engine)
