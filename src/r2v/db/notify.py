"""Waking idle workers: PostgreSQL LISTEN/NOTIFY, with polling as the fallback.

The store NOTIFYs `r2v_tasks` in the transaction that makes a task claimable (a create, a
requeue, a hand-back); a listener thread per process turns each notification into a wake-up
of the local workers. If the connection breaks, workers keep polling while it reconnects.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.engine import make_url

from r2v.db.store import TASKS_CHANNEL

log = logging.getLogger("r2v.notify")


def listen_url(url: str) -> str | None:
    """A libpq connection string for LISTEN, or None when the database is not PostgreSQL."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return None
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


class TaskListener:
    """Sets `wake` whenever a NOTIFY on the tasks channel arrives."""

    def __init__(self, conninfo: str, wake: threading.Event) -> None:
        self._conninfo = conninfo
        self._wake = wake

    def run(self, stop: threading.Event) -> None:
        """Listen until `stop` is set, reconnecting after failures."""
        import psycopg

        while not stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {TASKS_CHANNEL}")
                    while not stop.is_set():
                        for _note in conn.notifies(timeout=1.0, stop_after=1):
                            self._wake.set()
            except Exception:
                log.warning("task notifications lost; polling until they are back", exc_info=True)
                stop.wait(2.0)
