"""Every domain error the API can raise has its HTTP status; nothing leaks a traceback."""

from __future__ import annotations

import sqlite3

import pytest
from fastapi.testclient import TestClient

from r2v import errors
from r2v.api.errors import TYPE_OF_STATUS, status_of
from r2v.bootstrap import Runtime, build_app
from r2v.protocol import TaskErrorCode
from r2v.settings import Settings


def subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *subclasses(sub)]
    return found


@pytest.mark.parametrize(
    "cls", [*subclasses(errors.RequestError), errors.ServiceUnavailable], ids=lambda c: c.__name__
)
def test_every_request_error_is_mapped(cls: type[errors.R2VError]) -> None:
    exc = cls.__new__(cls)
    status, error_type = status_of(exc)
    assert 400 <= status < 600 and status != 500
    assert error_type.endswith("_error")
    if status in TYPE_OF_STATUS and status != 410:
        assert error_type == TYPE_OF_STATUS[status]


def test_task_failures_carry_the_api_error_codes() -> None:
    codes = {cls.code for cls in subclasses(errors.TaskFailure)}
    assert codes == {
        "reference_fetch_failed",
        "reference_invalid",
        "generation_failed",
        "generation_timeout",
        "request_cancelled",
        "service_error",
        "invalid_parameters",
        "content_policy_violation",
        "upstream_unavailable",
    }
    assert codes <= {code.value for code in TaskErrorCode}


def test_an_unexpected_failure_is_a_bare_500_with_a_request_id(
    runtime: Runtime, auth: dict[str, str], settings: Settings
) -> None:
    # break the database under the running server: a real fault, not a mock
    with sqlite3.connect(settings.data_dir / "r2v.db") as conn:
        conn.execute("DROP TABLE tasks")
    api = TestClient(build_app(runtime), raise_server_exceptions=False)
    response = api.get("/v1/tasks/task-unified-1700000000-abcdefgh", headers=auth)
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["type"] == "internal_server_error"
    request_id = response.headers["x-request-id"]
    assert request_id in error["message"]
    assert "Traceback" not in response.text and "sqlite" not in response.text.lower()
    assert api.get("/healthz").status_code == 200
