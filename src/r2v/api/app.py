"""The app factory: `create_app(services)` wires routes, middleware and error handlers.

Nothing is built at import. Start-up and shut-down (the workers, the housekeeping) belong to
whoever composes the server and are passed in as `on_startup` / `on_shutdown`.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import r2v
from r2v import logs
from r2v.api.ark import ark
from r2v.api.docs import finish_schema, install_docs
from r2v.api.errors import door_of, error_response, install_error_handlers
from r2v.api.gate import Gate
from r2v.api.paths import route_path
from r2v.api.playground import playground
from r2v.api.polls import TaskPolls
from r2v.api.reads import TaskReads
from r2v.api.routes import public, v1
from r2v.api.services import ApiServices
from r2v.api.streaming import StreamSlots
from r2v.api.videos import videos
from r2v.metrics import Metrics

UPLOAD_PATHS = frozenset({"/v1/files", "/v1/videos"})
"""Where a body may carry a file (an upload, or OpenAI's `input_reference`): the upload cap."""
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_ids = random.Random()
access_log = logging.getLogger("r2v.access")
"""One line per request: method, path (never the query: it holds links' signatures),
status and milliseconds; the request id rides along like every log record's."""


class RequestContext:
    """Gives every request an id (echoed as X-Request-ID), caps the body size, times the
    request and logs it (`r2v.access`).

    Uploads (`POST /v1/files`) have their own, larger cap; every other body the JSON cap.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        max_upload_bytes: int,
        metrics: Metrics | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes
        self.metrics = metrics
        self._timers: dict[tuple[str, str, int], Any] = {}  # labelled children, looked up once

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = client = ""
        declared = b""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
            elif name == b"x-client-request-id":  # the Ark SDKs' own id of each request
                client = value.decode("latin-1")
            elif name == b"content-length":
                declared = value
        incoming = incoming or client
        # an id to correlate logs, not a secret: no need for the system's entropy pool
        request_id = (
            incoming if _SAFE_REQUEST_ID.match(incoming) else f"{_ids.getrandbits(64):016x}"
        )
        scope.setdefault("state", {})["request_id"] = request_id
        logs.request_id.set(request_id)
        started = time.perf_counter()
        status = 500

        cap = self.max_upload_bytes if route_path(scope) in UPLOAD_PATHS else self.max_body_bytes
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > cap:
                # FastAPI passes HTTPException through its body parsing untouched
                raise HTTPException(413, _too_large_message(cap))
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"x-request-id" for name, _value in headers):
                    headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        # a bodiless request (every poll) needs no byte counting
        bodiless = scope["method"] in ("GET", "HEAD", "DELETE") and not declared
        try:
            if declared.isdigit() and int(declared) > cap:
                await self._too_large(cap, scope, receive, send_with_id)
            else:
                await self.app(scope, receive if bodiless else counted_receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            if self.metrics is not None:
                self._observe(scope, status, seconds)
            if access_log.isEnabledFor(logging.INFO):
                _log_access(scope, status, seconds)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        assert self.metrics is not None
        route = str(scope.get("r2v.route") or getattr(scope.get("route"), "path", "unmatched"))
        label = (scope["method"], route, status)
        timer = self._timers.get(label)
        if timer is None:
            timer = self.metrics.http_seconds.labels(scope["method"], route, str(status))
            self._timers[label] = timer
        timer.observe(seconds)

    async def _too_large(self, cap: int, scope: Scope, receive: Receive, send: Send) -> None:
        door = door_of(route_path(scope))
        response = error_response(413, "request_too_large", _too_large_message(cap), door=door)
        await response(scope, receive, send)


def _log_access(scope: Scope, status: int, seconds: float) -> None:
    method, path, ms = scope["method"], scope["path"], round(seconds * 1000, 1)
    fields = logs.fields(method=method, path=path, status=status, duration_ms=ms)
    access_log.info("%s %s %d %.1f ms", method, path, status, ms, extra=fields)


def _too_large_message(cap: int) -> str:
    return f"the body is larger than {cap:,} bytes: send large references by URL"


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The schema, with the bearer scheme on every /v1 and Ark operation (`api_key`)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = finish_schema(
        get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
    )
    schema.setdefault("components", {})["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer"}
    }
    for path, operations in schema["paths"].items():
        if path.startswith(("/v1/", "/api/v3/")):
            for operation in operations.values():
                operation["security"] = [{"bearer": []}]
    app.openapi_schema = schema
    return schema


class R2vApp(FastAPI):
    """FastAPI, with the request context and the pollers' path in front of its own stack.

    Outermost, so that every answer (the framework's own 500s included) carries its request
    id and is timed, and so that polls skip the framework's layers (see `TaskPolls`).
    """

    def __init__(self, services: ApiServices, reads: TaskReads, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._services = services
        self._reads = reads
        self.state.services = services  # where the routes find them
        self.state.reads = reads
        self.state.streams = StreamSlots(services.max_streams_per_key)

    polls: TaskPolls | None = None
    """The pollers' path, once the stack is built (its `app` is the framework's own stack)."""

    def build_middleware_stack(self) -> ASGIApp:
        """Outermost first: the request context, the gate, the middlewares added to the app,
        the pollers' path, then the framework's own stack.

        A middleware added with `add_middleware` (or `@app.middleware("http")`) wraps the
        pollers' path as well as the framework, so it sees every request, polls included.
        Where FastAPI puts it, inside its own stack, `TaskPolls` would answer polls before it
        ever ran, and a CORS or auth layer would silently miss the busiest request there is.
        Polls pay for what is added; r2v itself adds nothing there.
        """
        services = self._services
        added, self.user_middleware = self.user_middleware, []
        try:
            framework = super().build_middleware_stack()
        finally:
            self.user_middleware = added
        self.polls = TaskPolls(framework, services, self._reads)
        inner: ASGIApp = self.polls
        if added:
            for cls, args, kwargs in reversed(added):
                inner = cls(inner, *args, **kwargs)
            # what the framework's own stack does for its middlewares: an exception escaping
            # one is answered by the app's 500 handler (the error envelope)
            handler = next(
                (h for k, h in self.exception_handlers.items() if k in (500, Exception)), None
            )
            inner = ServerErrorMiddleware(inner, handler=handler, debug=self.debug)
        return RequestContext(
            Gate(inner, services.keys, services.allowed_hosts),
            max_body_bytes=services.max_body_bytes,
            max_upload_bytes=services.max_upload_bytes,
            metrics=services.metrics,
        )


def create_app(
    services: ApiServices,
    *,
    on_startup: Callable[[], None] = lambda: None,
    on_shutdown: Callable[[], None] = lambda: None,
) -> FastAPI:
    """The r2v HTTP app over `services`; `on_startup`/`on_shutdown` run in a thread."""

    reads = TaskReads(services.tasks.get_many)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(on_startup)
        try:
            yield
        finally:
            reads.close()
            await run_in_threadpool(on_shutdown)

    app = R2vApp(
        services,
        reads,
        title="r2v",
        version=r2v.__version__,
        summary="Seedance 2.0 multimodal reference-to-video API, self-hosted.",
        lifespan=lifespan,
        docs_url=None,  # the CDN's page: ours, served from the package, is `install_docs`
        redoc_url=None,
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    install_error_handlers(app)
    app.include_router(v1)
    app.include_router(videos)
    app.include_router(ark)
    app.include_router(public)
    install_docs(app)
    app.include_router(playground)
    return app
