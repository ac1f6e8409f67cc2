"""The pollers' path: `GET /v1/tasks/{id}` answered ahead of the router, as the route would."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from fastapi import Request, Response
from fastapi.testclient import TestClient
from PIL import Image
from starlette.types import ASGIApp, Receive, Scope, Send

from r2v.api.app import R2vApp
from r2v.api.errors import exception_response
from r2v.bootstrap import Runtime, build_app
from r2v.settings import Settings
from tests.conftest import METRICS_AUTH, make_settings
from tests.refserver import RefServer

BODY = {"model": "seedance-2.0-fast-reference-to-video", "prompt": "a calm sea", "duration": 4}


@pytest.fixture
def settings(tmp_path: Path, refserver: RefServer) -> Settings:
    return make_settings(tmp_path / "data", refserver, workers=0)  # tasks stay pending


class Seen:
    """A middleware inside the framework's stack, noting every request that reaches it."""

    def __init__(self, app: ASGIApp, paths: list[str]) -> None:
        self.app, self.paths = app, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths.append(f"{scope['method']} {scope['path']}")
        await self.app(scope, receive, send)


def framework_seen(app: R2vApp) -> list[str]:
    """The requests that reach the framework's own stack, behind the pollers' path."""
    app.middleware_stack = app.build_middleware_stack()
    assert app.polls is not None
    reached: list[str] = []
    app.polls.app = Seen(app.polls.app, reached)
    return reached


def create(api: TestClient, auth: dict[str, str]) -> str:
    response = api.post("/v1/videos/generations", json=BODY, headers=auth)
    assert response.status_code == 200, response.text
    task_id: str = response.json()["id"]
    return task_id


def test_polls_skip_the_framework_and_everything_else_reaches_it(
    runtime: Runtime, auth: dict[str, str]
) -> None:
    app = build_app(runtime)
    assert isinstance(app, R2vApp)
    reached = framework_seen(app)
    with TestClient(app) as api:
        task_id = create(api, auth)
        assert api.get(f"/v1/tasks/{task_id}", headers=auth).status_code == 200
        assert api.get("/v1/tasks", headers=auth).status_code == 200
        assert api.delete(f"/v1/tasks/{task_id}", headers=auth).status_code == 200
        assert api.head(f"/v1/tasks/{task_id}", headers=auth).status_code == 405
        # a trailing slash is not a poll: the router redirects it as before
        slash = api.get(f"/v1/tasks/{task_id}/", headers=auth, follow_redirects=False)
        assert slash.status_code == 307
    assert reached == [
        "POST /v1/videos/generations",
        "GET /v1/tasks",
        f"DELETE /v1/tasks/{task_id}",
        f"HEAD /v1/tasks/{task_id}",
        f"GET /v1/tasks/{task_id}/",
    ]


async def get(app: ASGIApp, path: str, headers: dict[str, str], root: str = "") -> httpx.Response:
    transport = httpx.ASGITransport(app=app, root_path=root)
    async with httpx.AsyncClient(transport=transport, base_url="http://r2v.test") as client:
        return await client.get(path, headers=headers)


@pytest.mark.parametrize("case", ["pending", "cancelled", "other key", "bad id", "no key"])
def test_the_poll_path_answers_exactly_as_the_declared_route(
    runtime: Runtime, auth: dict[str, str], case: str
) -> None:
    app = build_app(runtime)
    assert isinstance(app, R2vApp)
    with TestClient(app) as api:
        task_id = create(api, auth)
        headers: dict[str, str] = dict(auth)
        if case == "cancelled":
            api.delete(f"/v1/tasks/{task_id}", headers=auth)
        elif case == "other key":
            headers = {"Authorization": f"Bearer {runtime.keys.create('other').secret}"}
        elif case == "bad id":
            task_id = "task-unified-1-ABC"
        elif case == "no key":
            headers = {}
        polls = app.polls
        assert polls is not None

        async def framework(scope: Scope, receive: Receive, send: Send) -> None:
            # the framework's own stack, behind the poll path, as the app would enter it
            scope["app"] = app
            await polls.app(scope, receive, send)

        fast = asyncio.run(get(app, f"/v1/tasks/{task_id}", headers))
        routed = asyncio.run(get(framework, f"/v1/tasks/{task_id}", headers))
    assert fast.status_code == routed.status_code
    assert fast.json() == routed.json()
    for header in ("content-type", "content-length", "retry-after", "openai-poll-after-ms"):
        assert fast.headers.get(header) == routed.headers.get(header), header
    expected = {"pending": 200, "cancelled": 200, "other key": 404, "bad id": 400, "no key": 401}
    assert fast.status_code == expected[case]
    if case == "pending":
        assert fast.headers["retry-after"] == "2" and fast.json()["status"] == "pending"
    if case == "cancelled":
        assert "retry-after" not in fast.headers and fast.json()["status"] == "failed"


def test_polls_carry_the_request_id_and_are_timed_under_their_route(
    api: TestClient, auth: dict[str, str]
) -> None:
    task_id = create(api, auth)
    answer = api.get(f"/v1/tasks/{task_id}", headers=auth | {"X-Request-ID": "poll-42"})
    assert answer.headers["x-request-id"] == "poll-42"
    missing = api.get("/v1/tasks/task-unified-1700000000-abcdefgh", headers=auth)
    assert missing.status_code == 404 and missing.headers["x-request-id"]
    metrics = api.get("/metrics", headers=METRICS_AUTH).text
    for status in ("200", "404"):
        series = (
            'r2v_http_request_duration_seconds_count{method="GET",'
            f'route="/v1/tasks/{{task_id}}",status="{status}"}} 1.0'
        )
        assert series in metrics


def test_polls_under_a_root_path(runtime: Runtime, auth: dict[str, str]) -> None:
    with TestClient(build_app(runtime)) as api:
        task_id = create(api, auth)
    app = build_app(runtime)
    assert isinstance(app, R2vApp)
    reached = framework_seen(app)
    answer = asyncio.run(get(app, f"/r2v/v1/tasks/{task_id}", auth, "/r2v"))
    assert reached == []  # answered by the poll path
    assert answer.status_code == 200
    assert answer.json()["id"] == task_id


def test_a_middleware_added_to_the_app_sees_polls_too(
    runtime: Runtime, auth: dict[str, str]
) -> None:
    app = build_app(runtime)
    added: list[str] = []
    app.add_middleware(Seen, paths=added)

    @app.middleware("http")
    async def tagged(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Any:
        response = await call_next(request)
        response.headers["x-tagged"] = "yes"
        return response

    with TestClient(app) as api:
        task_id = create(api, auth)
        poll = api.get(f"/v1/tasks/{task_id}", headers=auth)
        listed = api.get("/v1/tasks", headers=auth)
    assert poll.status_code == listed.status_code == 200
    assert poll.headers["x-tagged"] == listed.headers["x-tagged"] == "yes"
    assert added == ["POST /v1/videos/generations", f"GET /v1/tasks/{task_id}", "GET /v1/tasks"]


class Broken:
    """A middleware that fails on every request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raise RuntimeError("broken middleware")
        await self.app(scope, receive, send)


def test_a_failing_middleware_gets_the_error_envelope(
    runtime: Runtime, auth: dict[str, str]
) -> None:
    app = build_app(runtime)
    app.add_middleware(Broken)
    with TestClient(app, raise_server_exceptions=False) as api:
        answer = api.get("/v1/tasks/task-unified-1700000000-abcdefgh", headers=auth)
    assert answer.status_code == 500
    assert answer.json()["error"]["type"] == "internal_server_error"
    assert answer.headers["x-request-id"] in answer.json()["error"]["message"]


def test_the_upload_cap_holds_under_a_root_path(runtime: Runtime, auth: dict[str, str]) -> None:
    # bigger than the JSON cap (1 MB), well under the upload cap
    noise = np.random.default_rng(1).integers(0, 256, (800, 900, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    picture = buffer.getvalue()
    assert runtime.settings.max_body_bytes < len(picture) < runtime.settings.max_upload_bytes
    app = build_app(runtime)

    async def post(path: str, **sent: Any) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, root_path="/r2v")
        async with httpx.AsyncClient(transport=transport, base_url="http://r2v.test") as client:
            return await client.post(path, headers=auth, **sent)

    uploaded = asyncio.run(post("/r2v/v1/files", files={"file": ("noise.png", picture)}))
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["bytes"] == len(picture)
    padded = BODY | {"prompt": "x" * len(picture)}
    refused = asyncio.run(post("/r2v/v1/videos/generations", json=padded))
    assert refused.status_code == 413
    assert refused.json()["error"]["code"] == "request_too_large"


def test_under_a_root_path_keys_are_checked_first_and_each_door_keeps_its_envelope(
    runtime: Runtime, auth: dict[str, str]
) -> None:
    app = build_app(runtime)

    async def call(method: str, path: str, **sent: Any) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, root_path="/r2v")
        async with httpx.AsyncClient(transport=transport, base_url="http://r2v.test") as client:
            return await client.request(method, path, **sent)

    # no key: refused before the body is read, in the Ark door's own envelope
    stranger = asyncio.run(
        call("POST", "/r2v/api/v3/contents/generations/tasks", json={"model": "x", "content": []})
    )
    assert stranger.status_code == 401
    assert stranger.json()["error"]["code"] == "AuthenticationError"
    missing = asyncio.run(
        call("GET", "/r2v/api/v3/contents/generations/tasks/task-unified-1-aaaaaaaa", headers=auth)
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NotFound"
    ours = asyncio.run(call("GET", "/r2v/v1/tasks/task-unified-1-aaaaaaaa", headers=auth))
    assert ours.json()["error"]["code"] == "task_not_found"


def test_a_locked_database_is_a_503_to_retry_not_a_500(tmp_path: Path) -> None:
    # a real SQLITE_BUSY: another connection holds the database exclusively
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    caught: Any = None
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT * FROM t")
    except sa.exc.OperationalError as exc:
        caught = exc
    finally:
        holder.close()
        engine.dispose()
    assert caught is not None
    response = exception_response(caught, "req-1")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert b"database_unavailable" in response.body and b"req-1" in response.body
