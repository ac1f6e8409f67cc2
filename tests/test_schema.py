"""Property-based requests over the live OpenAPI schema: no input makes the server fail (5xx).

schemathesis generates requests for every operation from `/openapi.json` and sends them to
the real app (authenticated, workers off so nothing renders); each answer must be < 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings

from r2v.bootstrap import Runtime, build_app, build_runtime
from tests.conftest import make_settings
from tests.refserver import RefServer


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory, refserver: RefServer) -> Iterator[Runtime]:
    data = Path(tmp_path_factory.mktemp("schema")) / "data"
    built = build_runtime(make_settings(data, refserver, workers=0, rate_limit_burst=10_000))
    yield built
    built.close()


@pytest.fixture(scope="module")
def app(runtime: Runtime) -> FastAPI:
    return build_app(runtime)


@pytest.fixture(scope="module")
def bearer(runtime: Runtime) -> dict[str, str]:
    return {"Authorization": f"Bearer {runtime.keys.create('schema').secret}"}


@pytest.fixture(scope="module")
def api_schema(app: FastAPI) -> schemathesis.BaseSchema:
    loaded = schemathesis.openapi.from_asgi("/openapi.json", app)
    # the event stream of a pending task never ends: it is covered by its own tests
    return loaded.exclude(path_regex=r"/events$")


def test_no_request_makes_the_server_fail(
    api_schema: schemathesis.BaseSchema, bearer: dict[str, str]
) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 8
    seen: set[tuple[str, int]] = set()
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def no_server_error(case: schemathesis.Case) -> None:
            response = case.call(headers=bearer)
            seen.add((case.operation.path, response.status_code))
            assert response.status_code < 500, (case.as_curl_command(), response.text[:500])

        no_server_error()
    # the run reached the handlers, not only the validation in front of them
    assert ("/v1/videos/generations", 200) in seen, sorted(seen)
    assert {status for _path, status in seen} >= {200, 400, 404}
