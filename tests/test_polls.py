"""The pollers' path: `GET /v1/tasks/{id}` answered ahead of the router, as the route would."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
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


def create(api: TestClient, auth: dict[str, str]) -> str:
    response = api.post("/v1/videos/generations", json=BODY, headers=auth)
    assert response.status_code == 200, response.text
    task_id: str = response.json()["id"]
    return task_id


def test_polls_skip_the_framework_and_everything_else_reaches_it(
    runtime: Runtime, auth: dict[str, str]
) -> None:
    app = build_app(runtime)
    reached: list[str] = []
    app.add_middleware(Seen, paths=reached)
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
    reached: list[str] = []
    app.add_middleware(Seen, paths=reached)
    answer = asyncio.run(get(app, f"/r2v/v1/tasks/{task_id}", auth, "/r2v"))
    assert reached == []  # answered by the poll path
    assert answer.status_code == 200
    assert answer.json()["id"] == task_id


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
