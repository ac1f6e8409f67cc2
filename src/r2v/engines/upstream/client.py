"""Talking to upstreams: one asynchronous connection pool for every upstream task in flight.

Each call ends one of three ways: an answer, `Transient` (try again later: the upstream could
not be reached, or said 408, 409, 429 or 5xx) or a `TaskFailure` (refused for good). Answers
are read under a byte cap and must be JSON; the key goes only into the Authorization header
and is scrubbed from anything the upstream says back.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import zlib
from collections.abc import Callable
from typing import Any

import httpx

from r2v.engines.upstream.ark import ArkDialect
from r2v.engines.upstream.request import (
    Call,
    Dialect,
    Malformed,
    UpstreamRequest,
    UpstreamStatus,
    UpstreamTarget,
    poll_hint,
)
from r2v.engines.upstream.unified import UnifiedDialect
from r2v.errors import GenerationFailed

log = logging.getLogger("r2v.upstream")

MAX_ANSWER_BYTES = 1024 * 1024
"""An upstream's JSON answer is a few KB; more than this is not an answer."""
_TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})

DIALECTS: dict[str, Dialect] = {"ark": ArkDialect(), "unified": UnifiedDialect()}

Outcome = Callable[[str, str], None]
"""Told (upstream label, outcome) of every request, for the metrics."""


class Transient(Exception):
    """The upstream could not take the request now; it may later."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _Answer:
    def __init__(self, status_code: int, data: Any, headers: dict[str, str]) -> None:
        self.status_code = status_code
        self.data = data
        self.headers = headers


class UpstreamClient:
    """Sends tasks to upstreams and reads them back, from inside one event loop."""

    def __init__(
        self,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        max_connections: int = 200,
        on_outcome: Outcome = lambda _label, _outcome: None,
    ) -> None:
        self._timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections // 4
        )
        self._on_outcome = on_outcome
        self._http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> UpstreamClient:
        # The upstream is the operator's own choice: its proxy settings apply, and no
        # address checks (those guard what strangers point r2v at).
        self._http = httpx.AsyncClient(
            timeout=self._timeout, limits=self._limits, follow_redirects=False
        )
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def create(self, target: UpstreamTarget, request: UpstreamRequest) -> str:
        """Create the task upstream; its upstream id."""
        dialect = DIALECTS[target.api]
        try:
            answer = await self._send(target, dialect.create(target, request), "create")
            if answer.status_code >= 400:
                self._on_outcome(target.label, "create_refused")
                raise dialect.refusal(target, answer.status_code, answer.data)
            ref = dialect.created(answer.data)
        except Malformed as exc:
            self._on_outcome(target.label, "create_malformed")
            raise GenerationFailed(
                f"{target.name} accepted the task but its answer is unusable ({exc})"
            ) from exc
        self._on_outcome(target.label, "create_ok")
        return ref

    async def status(self, target: UpstreamTarget, ref: str) -> UpstreamStatus:
        """How the upstream task is doing; raises `Malformed` for an answer that is not one."""
        dialect = DIALECTS[target.api]
        answer = await self._send(target, dialect.read(target, ref), "poll")
        if answer.status_code == 404:
            self._on_outcome(target.label, "poll_refused")
            raise GenerationFailed(
                f"{target.name} no longer knows the task {ref} (HTTP 404): create it again"
            )
        if answer.status_code >= 400:
            self._on_outcome(target.label, "poll_refused")
            raise dialect.refusal(target, answer.status_code, answer.data)
        try:
            found = dialect.status(target, answer.data)
        except Malformed:
            self._on_outcome(target.label, "poll_malformed")
            raise
        self._on_outcome(target.label, "poll_ok")
        hint = poll_hint(answer.headers)
        return found if hint is None else dataclasses.replace(found, poll_after=hint)

    async def cancel(self, target: UpstreamTarget, ref: str) -> bool:
        """Ask the upstream to cancel; whether it agreed. Never raises."""
        try:
            answer = await self._send(
                target, DIALECTS[target.api].cancel(target, ref), "cancel", body={}
            )
        except (Transient, Malformed) as exc:
            log.warning("cancelling %s on %s failed: %s", ref, target.label, exc)
            return False
        ok = answer.status_code < 400
        self._on_outcome(target.label, "cancel_ok" if ok else "cancel_refused")
        if not ok:
            log.info("%s did not cancel %s (HTTP %d)", target.label, ref, answer.status_code)
        return ok

    async def _send(
        self, target: UpstreamTarget, call: Call, operation: str, *, body: Any = None
    ) -> _Answer:
        assert self._http is not None, "use the client inside `async with`"
        headers = {
            "Authorization": f"Bearer {target.api_key}",
            "Accept": "application/json",
            "Accept-Encoding": "identity",
            "User-Agent": "r2v-upstream/0.1",
            **call.headers,
        }
        payload = call.body if call.body is not None else body
        try:
            async with self._http.stream(
                call.method, call.url, json=payload, headers=headers
            ) as response:
                status = response.status_code
                answer_headers = {name.lower(): value for name, value in response.headers.items()}
                raw = await _read_capped(response) if status < 500 else b""
        except httpx.TimeoutException as exc:
            self._on_outcome(target.label, f"{operation}_unreachable")
            raise Transient(f"{target.label} did not answer in time") from exc
        except httpx.TransportError as exc:
            self._on_outcome(target.label, f"{operation}_unreachable")
            raise Transient(f"{target.label} could not be reached ({type(exc).__name__})") from exc
        if status in _TRANSIENT_STATUSES or status >= 500:
            self._on_outcome(target.label, f"{operation}_retry")
            raise Transient(f"{target.label} answered HTTP {status}", poll_hint(answer_headers))
        try:
            data = json.loads(raw) if raw.strip() else None
        except ValueError:
            data = None
        if data is None and status < 400 and operation != "cancel":
            self._on_outcome(target.label, f"{operation}_malformed")
            raise Malformed(f"{target.label} answered HTTP {status} without a JSON object")
        return _Answer(status, data, answer_headers)


async def _read_capped(response: httpx.Response) -> bytes:
    """The body as sent (decoded only from gzip or deflate), never more than the cap."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "deflate"):
        raise Malformed(f"the answer is encoded as {encoding!r}, which r2v does not read")
    inflate = zlib.decompressobj(47) if encoding != "identity" else None  # 47: gzip or zlib
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        if inflate is not None:
            chunk = inflate.decompress(chunk, MAX_ANSWER_BYTES + 1 - size)
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise Malformed(f"the answer is longer than {MAX_ANSWER_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
