"""The pollers' path: `GET /v1/tasks/{id}` answered ahead of the framework's router.

Every client polls, so this one request is most of what a server answers. Under load,
FastAPI's router, dependency solving and exception middlewares cost the main thread more
than the poll itself does (bench/load.py measures both), so `TaskPolls` answers it as plain
ASGI: the same key check, the same coalesced read (`TaskReads`), the same headers and error
envelope as the declared route, which stays in the app for its OpenAPI entry. Everything
else goes on to the framework untouched.
"""

from __future__ import annotations

import math

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from r2v.api.errors import exception_response
from r2v.api.paths import route_path
from r2v.api.reads import TaskReads
from r2v.api.services import ApiServices
from r2v.protocol import TaskObject
from r2v.tasks.keys import KeyService
from r2v.tasks.ports import ApiKey
from r2v.tasks.service import poll_after_ms

TASK_ROUTE = "/v1/tasks/{task_id}"
_PREFIX = TASK_ROUTE.removesuffix("{task_id}")


def authorization(scope: Scope) -> str | None:
    """The `Authorization` header, straight from the raw headers (every request asks)."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            return str(value.decode("latin-1"))
    return None


async def authenticate(keys: KeyService, scope: Scope) -> ApiKey:
    """The caller's key, from `Authorization: Bearer <key>` (the database only on a miss)."""
    header = authorization(scope)
    cached = keys.cached(header)
    return cached if cached is not None else await run_in_threadpool(keys.authenticate, header)


def hint_headers(task: TaskObject) -> dict[str, str]:
    """The poll hint of a task still running (`Retry-After`, `openai-poll-after-ms`)."""
    wait_ms = poll_after_ms(task)
    if wait_ms is None:
        return {}
    return {"Retry-After": str(math.ceil(wait_ms / 1000)), "openai-poll-after-ms": str(wait_ms)}


def task_json(task: TaskObject) -> bytes:
    """A task object as the wire carries it."""
    return task.model_dump_json(exclude_none=True).encode()


async def answer_poll(
    services: ApiServices, reads: TaskReads, scope: Scope, task_id: str
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a poll's answer: the caller's task as JSON, with its poll
    hint. Raises the domain error a bad key or id gets. Both the declared route and
    `TaskPolls` answer with this, so the two cannot drift apart."""
    key = await authenticate(services.keys, scope)
    task = await reads.get(key.id, task_id, services.base_url(scope))
    return task_json(task), {"content-type": "application/json"} | hint_headers(task)


class TaskPolls:
    """ASGI: answers `GET /v1/tasks/{id}` itself and passes every other request to `app`."""

    def __init__(self, app: ASGIApp, services: ApiServices, reads: TaskReads) -> None:
        self.app = app
        self.services = services
        self.reads = reads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task_id = _task_id(scope)
        if task_id is None:
            await self.app(scope, receive, send)
            return
        scope["r2v.route"] = TASK_ROUTE
        try:
            body, extra = await answer_poll(self.services, self.reads, scope, task_id)
        except Exception as exc:  # every failure gets its envelope, as on the routes
            request_id = scope.get("state", {}).get("request_id", "-")
            await exception_response(exc, request_id)(scope, receive, send)
            return
        headers = [(b"content-length", str(len(body)).encode())]
        headers += [(name.lower().encode(), value.encode()) for name, value in extra.items()]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _task_id(scope: Scope) -> str | None:
    # exactly `GET /v1/tasks/<one non-empty segment>`; `…/events` and the rest are not polls
    if scope["type"] != "http" or scope["method"] != "GET":
        return None
    path = route_path(scope)
    if not path.startswith(_PREFIX):
        return None
    task_id = path[len(_PREFIX) :]
    return task_id if task_id and "/" not in task_id else None
