"""Every domain error the API can raise has its HTTP status; nothing leaks a traceback."""

from __future__ import annotations

import json
import sqlite3

import pytest
from fastapi.testclient import TestClient

from r2v import errors
from r2v.api.errors import STATUS_OF, TYPE_OF_STATUS, domain_response, status_of
from r2v.bootstrap import Runtime, build_app
from r2v.protocol import TaskErrorCode
from r2v.settings import Settings


def subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *subclasses(sub)]
    return found


def test_the_table_names_exactly_the_errors_a_request_may_end_in() -> None:
    # class by class: a new request error must be given its status here, on purpose
    assert set(STATUS_OF) == {*subclasses(errors.RequestError), errors.ServiceUnavailable}


@pytest.mark.parametrize(
    "cls", [*subclasses(errors.RequestError), errors.ServiceUnavailable], ids=lambda c: c.__name__
)
def test_every_request_error_is_mapped(cls: type[errors.R2VError]) -> None:
    exc = cls.__new__(cls)
    mapped = status_of(exc)
    assert mapped is not None
    status, error_type = mapped
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


@pytest.mark.parametrize(
    "exc",
    [
        errors.RequestError("a base-class refusal no table row names"),
        errors.ConfigurationError("R2V_SOMETHING is wrong at /srv/r2v/secret"),
        errors.GenerationFailed("a task failure raised inside a request"),
        errors.LeaseLost("lost the lease"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_an_error_the_table_does_not_name_is_a_logged_500_with_a_request_id(
    exc: errors.R2VError, caplog: pytest.LogCaptureFixture
) -> None:
    response = domain_response(exc, "req-7")
    body = json.loads(bytes(response.body))
    assert response.status_code == 500
    assert body["error"]["type"] == "internal_server_error"
    assert "req-7" in body["error"]["message"] and exc.message not in body["error"]["message"]
    assert any("req-7" in record.getMessage() for record in caplog.records)
