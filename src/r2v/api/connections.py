"""Deadlines for slow clients: a connection must send a request fast enough, or it is closed.

Uvicorn closes a keep-alive connection left idle after an answer, but it has no deadline for
a request on its way in: a client that connects and sends nothing, or drips its headers or
its body a byte at a time, holds a socket and a file descriptor for as long as it likes, and
a few hundred such clients starve the server. The protocol classes here are uvicorn's own
(httptools, or h11 where httptools is missing, as uvicorn's "auto" picks) with two rules:

- headers: a request's headers must be complete `header_timeout_seconds` after the
  connection was made, or after the previous answer was sent;
- body: from its headers on, a body must arrive at `min_body_bytes_per_second` on average,
  judged once `header_timeout_seconds` have passed, and must never stall for
  `header_timeout_seconds`. Time in which the server holds the client back (flow control
  while the app has not read what came; an `Expect: 100-continue` the app has not yet
  answered by reading) is not counted against it.

A connection that breaks a rule is closed: with a 408 first when the client was part way
through a request and nothing of an answer has been sent; without one when it sent nothing,
as uvicorn's keep-alive timeout closes an idle connection. The app's own time answering is
never limited here.

Each connection has one timer, armed when the connection is made and re-armed only when it
fires; a request itself starts and cancels no timer. What is relied on of uvicorn's
internals (checked against 0.54): the methods `connection_made`, `data_received`,
`on_response_complete` and `connection_lost`, the attributes in `_Connection` and `_Cycle`,
and `FlowControl`, which each connection's `flow` is replaced with a subclass of.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from importlib.util import find_spec
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol

from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.h11_impl import H11Protocol

from r2v.protocol import ErrorBody, ErrorDetail

log = logging.getLogger("r2v.api")

HAS_HTTPTOOLS = find_spec("httptools") is not None

# a timer may fire this early (uvloop rounds to milliseconds): treat the deadline as reached
_SLACK = 0.005

_TIMEOUT_BODY = (
    ErrorBody(
        error=ErrorDetail(
            code="request_timeout",
            message="The request did not arrive in time; the connection is closed.",
            type="invalid_request_error",
        )
    )
    .model_dump_json()
    .encode()
)
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: application/json\r\n"
    b"content-length: %d\r\n"
    b"connection: close\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


@dataclass(frozen=True)
class Limits:
    """How fast a client must send a request (`R2V_HEADER_TIMEOUT_SECONDS`, ...)."""

    header_timeout_seconds: float = 10.0
    min_body_bytes_per_second: int = 8000


class _Cycle(Protocol):
    """What is read of uvicorn's `RequestResponseCycle` (alike in both implementations)."""

    @property
    def more_body(self) -> bool: ...
    @property
    def response_started(self) -> bool: ...
    @property
    def response_complete(self) -> bool: ...
    @property
    def waiting_for_100_continue(self) -> bool: ...


class _Connection(Protocol):
    """What is read of uvicorn's HTTP protocol objects."""

    @property
    def transport(self) -> asyncio.Transport: ...
    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...
    @property
    def client(self) -> tuple[str, int] | None: ...
    @property
    def cycle(self) -> _Cycle | None: ...


class _MeteredFlow(FlowControl):
    """Uvicorn's flow control, also timing how long the server holds the client back."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(transport)
        self._loop = loop
        self.held_since: float | None = None  # holding the client back since (loop time)
        self._held = 0.0  # seconds held back before `held_since`, since `restart`

    def hold(self) -> None:
        if self.held_since is None:
            self.held_since = self._loop.time()

    def pause_reading(self) -> None:
        self.hold()
        super().pause_reading()

    def resume_reading(self) -> None:
        # also called on each `receive()` of the app, which is when a 100-continue is sent
        if self.held_since is not None:
            self._held += self._loop.time() - self.held_since
            self.held_since = None
        super().resume_reading()

    def held(self, now: float) -> float:
        """Seconds the client was held back since `restart`, up to `now`."""
        if self.held_since is None:
            return self._held
        return self._held + now - self.held_since

    def restart(self, now: float) -> None:
        self._held = 0.0
        if self.held_since is not None:
            self.held_since = now


class _Deadlines:
    """The header and body deadlines of one connection, watched by one timer."""

    def __init__(self, conn: _Connection, limits: Limits) -> None:
        self._conn = conn
        self._loop = conn.loop
        self._timeout = limits.header_timeout_seconds
        self._rate = float(limits.min_body_bytes_per_second)
        self.flow = _MeteredFlow(conn.transport, conn.loop)
        self._headers_due = self._loop.time() + self._timeout
        self._partial = False  # bytes came since the connection was made or last answered
        self._body: _Cycle | None = None  # the request whose body is being timed
        self._body_since = 0.0
        self._body_bytes = 0
        self._body_last = 0.0  # the body clock when bytes last came
        self._timer = self._loop.call_at(self._headers_due, self._check)

    def received(self, size: int) -> None:
        """`size` bytes came, and uvicorn has parsed them."""
        self._partial = True
        cycle = self._conn.cycle
        if cycle is None or not cycle.more_body or cycle.response_complete:
            return
        now = self._loop.time()
        if cycle is not self._body:
            self._time_body(cycle, now)
        self._body_bytes += size
        self._body_last = self._body_clock(now)

    def answered(self) -> None:
        """An answer was sent: the next request's headers are due in `header_timeout`."""
        self._headers_due = self._loop.time() + self._timeout
        self._partial = False

    def stop(self) -> None:
        self._timer.cancel()

    def _time_body(self, cycle: _Cycle, now: float) -> None:
        self._body = cycle
        self._body_since = now
        self._body_bytes = 0
        self._body_last = 0.0
        self.flow.restart(now)
        if cycle.waiting_for_100_continue:  # the client waits for the app to ask for it
            self.flow.hold()

    def _body_clock(self, now: float) -> float:
        """Seconds the client has had to send the body, up to `now`."""
        return now - self._body_since - self.flow.held(now)

    def _check(self) -> None:
        conn = self._conn
        transport = conn.transport
        owner: object = transport.get_protocol()
        if transport.is_closing() or owner is not conn:
            return  # closed, or handed over to a WebSocket protocol
        now = self._loop.time()
        cycle = conn.cycle
        if cycle is None or cycle.response_complete:  # waiting for a request's headers
            if now + _SLACK >= self._headers_due:
                self._close(
                    f"headers not complete within {self._timeout:g} s", respond=self._partial
                )
                return
            due = self._headers_due
        elif cycle.more_body:
            if cycle is not self._body:
                self._time_body(cycle, now)
            body_due = self._body_due(now)
            if body_due is None:
                self._close(
                    f"request body slower than {self._rate:.0f} bytes/s or stalled",
                    respond=not cycle.response_started,
                )
                return
            due = body_due
        else:  # the app is answering, which is not the client's doing
            due = now + self._timeout
        self._timer = self._loop.call_at(due, self._check)

    def _body_due(self, now: float) -> float | None:
        """When to look at the body again (loop time), or None when it is too slow."""
        if self.flow.held_since is not None:
            return now + self._timeout  # the server holds the client back
        clock = self._body_clock(now) + _SLACK
        stalled = clock - self._body_last >= self._timeout
        if stalled or (clock >= self._timeout and self._body_bytes < self._rate * clock):
            return None
        # neither rule can be broken before this, and more bytes only push it further
        stall_due = self._body_last + self._timeout
        rate_due = max(self._timeout, self._body_bytes / self._rate)
        return now + max(min(stall_due, rate_due) - clock, _SLACK)

    def _close(self, reason: str, *, respond: bool) -> None:
        transport = self._conn.transport
        if respond:
            transport.write(_TIMEOUT_RESPONSE)
            host, port = self._conn.client or ("?", 0)
            log.info("closed a slow client (%s:%d): %s", host, port, reason)
        transport.close()  # after what is buffered: the end of a previous answer is not lost


class _WithDeadlines(asyncio.Protocol):
    """The deadlines hooked into a uvicorn HTTP protocol (mixed in before it)."""

    limits: ClassVar[Limits] = Limits()
    deadlines: _Deadlines
    flow: FlowControl

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.deadlines = _Deadlines(self, self.limits)  # type: ignore[arg-type]
        self.flow = self.deadlines.flow

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self.deadlines.received(len(data))

    def on_response_complete(self) -> None:
        self.deadlines.answered()
        super().on_response_complete()  # type: ignore[misc]

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.deadlines.stop()


class H11WithDeadlines(_WithDeadlines, H11Protocol):
    """Uvicorn's h11 protocol, closing slow clients."""


if TYPE_CHECKING or HAS_HTTPTOOLS:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HttpToolsWithDeadlines(_WithDeadlines, HttpToolsProtocol):
        """Uvicorn's httptools protocol, closing slow clients."""


def http_protocol(
    *,
    header_timeout_seconds: float,
    min_body_bytes_per_second: int,
    implementation: Literal["auto", "httptools", "h11"] = "auto",
) -> type[asyncio.Protocol]:
    """The class for `uvicorn.run(http=...)`: uvicorn's HTTP protocol with these limits.

    "auto" is httptools when it is installed, else h11, as uvicorn's own "auto".
    """
    chosen = Limits(header_timeout_seconds, min_body_bytes_per_second)
    if implementation == "httptools" or (implementation == "auto" and HAS_HTTPTOOLS):

        class HttpTools(HttpToolsWithDeadlines):
            limits = chosen

        return HttpTools

    class H11(H11WithDeadlines):
        limits = chosen

    return H11
