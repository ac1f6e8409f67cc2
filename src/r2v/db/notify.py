"""Waking idle workers: PostgreSQL LISTEN/NOTIFY, with polling as the fallback.

The store NOTIFYs `r2v_tasks` in the transaction that makes a task claimable (a create, a
requeue, a hand-back); a listener thread per process turns each notification into a wake-up
of the local workers. `r2v_keys` says a key was revoked: every process forgets the keys it
trusts. `r2v_upstream` carries a task id: an upstream called back about that
task, so whichever gateway follows it asks the upstream at once. If the connection breaks,
workers and gateways keep polling while it reconnects.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.engine import make_url

from r2v.db.keys import KEYS_CHANNEL
from r2v.db.store import TASKS_CHANNEL
from r2v.db.upstream import UPSTREAM_CHANNEL

log = logging.getLogger("r2v.notify")


def listen_url(url: str) -> str | None:
    """A libpq connection string for LISTEN, or None when the database is not PostgreSQL."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return None
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


class TaskListener:
    """Calls `wake` whenever a NOTIFY on the tasks channel arrives, and `upstream_news` with
    the task id of each NOTIFY on the upstream channel."""

    def __init__(
        self,
        conninfo: str,
        wake: Callable[[], None],
        upstream_news: Callable[[str], None] | None = None,
        key_revoked: Callable[[], None] | None = None,
    ) -> None:
        self._conninfo = conninfo
        self._wake = wake
        self._upstream_news = upstream_news
        self._key_revoked = key_revoked

    def run(self, stop: threading.Event) -> None:
        """Listen until `stop` is set, reconnecting after failures."""
        import psycopg

        while not stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {TASKS_CHANNEL}")
                    if self._upstream_news is not None:
                        conn.execute(f"LISTEN {UPSTREAM_CHANNEL}")
                    if self._key_revoked is not None:
                        conn.execute(f"LISTEN {KEYS_CHANNEL}")
                    while not stop.is_set():
                        for note in conn.notifies(timeout=1.0, stop_after=1):
                            if note.channel == UPSTREAM_CHANNEL and self._upstream_news:
                                self._upstream_news(note.payload)
                            elif note.channel == KEYS_CHANNEL and self._key_revoked:
                                self._key_revoked()
                            else:
                                self._wake()
            except Exception:
                log.warning("task notifications lost; polling until they are back", exc_info=True)
                stop.wait(2.0)
