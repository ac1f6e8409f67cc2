"""The API's documentation tells the truth and works offline.

`/openapi.json` declares, per operation, the statuses the route can answer and no others
(no FastAPI 422: r2v answers 400 `invalid_parameters`), marks r2v's additions with
`x-r2v-extension`, and carries examples that are valid requests. `/docs` is Swagger UI served
from the package: a real Chromium (Debian's, driven by Playwright) loads it from r2v under a
real uvicorn with every other origin blocked, and sees the operations.

The browser test is skipped on a machine without Chromium or Playwright, unless `CI` is set.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from r2v.api.ark import ArkCreateBody
from r2v.api.ark import to_request as ark_request
from r2v.bootstrap import build_app, build_runtime
from r2v.protocol import CreateVideoRequest, TaskObject
from tests.conftest import LiveServer, make_settings
from tests.refserver import RefServer

CHROMIUM = os.environ.get("R2V_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARK = "/api/v3/contents/generations/tasks"

# What each operation can answer: exactly these, no more (and never a 422 or a 500)
ANSWERS = {
    ("post", "/v1/videos/generations"): {200, 400, 401, 409, 413, 429, 503},
    ("get", "/v1/tasks/{task_id}"): {200, 400, 401, 404, 503},
    ("delete", "/v1/tasks/{task_id}"): {200, 400, 401, 404, 409, 503},
    ("get", "/v1/tasks"): {200, 400, 401, 503},
    ("get", "/v1/tasks/{task_id}/events"): {200, 400, 401, 404, 429, 503},
    ("post", "/v1/files"): {200, 400, 401, 413, 429, 503},
    ("get", "/v1/files/{file_id}/content"): {200, 206, 307, 400, 401, 404, 416, 503},
    ("post", "/v1/videos"): {200, 400, 401, 404, 413, 429, 503},
    ("delete", "/v1/videos/{video_id}"): {200, 400, 401, 404, 503},
    ("post", ARK): {200, 400, 401, 409, 413, 429, 503},
    ("delete", ARK + "/{task_id}"): {200, 400, 401, 404, 409, 503},
    ("get", "/results/{task_id}/video.mp4"): {200, 206, 307, 400, 403, 404, 410, 416, 503},
    ("get", "/healthz"): {200},
    ("get", "/readyz"): {200, 503},
}
CORE = {
    ("post", "/v1/videos/generations"),
    ("get", "/v1/tasks/{task_id}"),
    ("get", "/results/{task_id}/video.mp4"),
}
"""The operations of the hosted Seedance API itself; every other one is r2v's own."""
EXTENSION_FIELDS = {"callback_url", "first_frame_image", "last_frame_image", "return_last_frame"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, refserver: RefServer) -> Iterator[TestClient]:
    data = Path(tmp_path_factory.mktemp("docs")) / "data"
    runtime = build_runtime(make_settings(data, refserver, workers=0))
    try:
        with TestClient(build_app(runtime)) as client:
            yield client
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def schema(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    found: dict[str, Any] = response.json()
    return found


def operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


def test_the_schema_has_no_422_and_no_internal_jargon(schema: dict[str, Any]) -> None:
    text = json.dumps(schema)
    assert '"422"' not in text
    assert "EXT:" not in text
    assert "HTTPValidationError" not in text
    assert not {"HTTPValidationError", "ValidationError"} & set(schema["components"]["schemas"])
    # the pages themselves are no operations
    assert not {"/docs", "/docs/{name}", "/redoc", "/", "/playground"} & set(schema["paths"])


def test_each_operation_declares_what_it_can_answer(schema: dict[str, Any]) -> None:
    declared = {
        (method, path): {int(status) for status in operation["responses"]}
        for method, path, operation in operations(schema)
    }
    for operation, statuses in ANSWERS.items():
        assert declared[operation] == statuses, operation
    for (method, path), statuses in declared.items():
        assert 500 not in statuses and 422 not in statuses, (method, path)
        if path.startswith(("/v1/", "/api/v3/")):
            assert {400, 401, 503} <= statuses, (method, path)
        if "{" in path:
            assert 404 in statuses, (method, path)
        if method == "post":
            assert 413 in statuses, (method, path)
    # every error is the one envelope, with an example in the codes of its door
    for method, path, operation in operations(schema):
        for status, response in operation["responses"].items():
            if int(status) < 400 or int(status) == 416:
                continue
            content = response["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
            code = content["example"]["error"]["code"]
            assert code[:1].isupper() == path.startswith("/api/v3/"), (method, path, code)


def test_extensions_are_flagged_not_prefixed(schema: dict[str, Any]) -> None:
    for method, path, operation in operations(schema):
        flagged = operation.get("x-r2v-extension") is True
        assert flagged == ((method, path) not in CORE), (method, path)
        assert operation.get("summary") and operation.get("tags"), (method, path)
    named = {tag["name"] for tag in schema["tags"]}
    assert {tag for _m, _p, op in operations(schema) for tag in op["tags"]} <= named

    fields = schema["components"]["schemas"]["CreateVideoRequest"]["properties"]
    for name, field in fields.items():
        assert (field.get("x-r2v-extension") is True) == (name in EXTENSION_FIELDS), name
    assert schema["components"]["schemas"]["FileObject"]["x-r2v-extension"] is True
    assert schema["components"]["schemas"]["TaskList"]["x-r2v-extension"] is True
    create = schema["paths"]["/v1/videos/generations"]["post"]
    headers = {p["name"]: p for p in create["parameters"] if p["in"] == "header"}
    assert headers["idempotency-key"]["x-r2v-extension"] is True
    assert headers["prefer"]["x-r2v-extension"] is True


def test_examples_are_realistic_and_valid(schema: dict[str, Any]) -> None:
    fields = schema["components"]["schemas"]["CreateVideoRequest"]["properties"]
    assert fields["model"]["examples"] == ["seedance-2.0-reference-to-video"]
    assert "@Image1" in fields["prompt"]["examples"][0]
    for name in ("image_urls", "video_urls", "audio_urls"):
        url = fields[name]["examples"][0][0]
        assert urlsplit(url).scheme == "https" and urlsplit(url).path, url

    # the request bodies offered are requests the server takes
    create = schema["paths"]["/v1/videos/generations"]["post"]
    offered = create["requestBody"]["content"]["application/json"]["examples"]
    assert len(offered) >= 2
    for example in offered.values():
        CreateVideoRequest.model_validate(example["value"])
    ark_body = schema["paths"][ARK]["post"]["requestBody"]["content"]["application/json"]
    ark_request(ArkCreateBody.model_validate(ark_body["example"]))

    # the task shown is a task the server sends
    (task,) = schema["components"]["schemas"]["TaskObject"]["examples"]
    parsed = TaskObject.model_validate(task)
    assert parsed.results and parsed.results[0].startswith("https://")


def test_the_docs_page_and_its_files_come_from_the_server(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "default-src 'none'" in policy
    assert "http" not in page.text.replace("http-equiv", "")  # no other origin named
    assert "<script>" not in page.text  # no inline script: the policy forbids it

    bundle = client.get("/docs/swagger-ui-bundle.js", headers={"Accept-Encoding": "identity"})
    assert bundle.status_code == 200 and b"SwaggerUIBundle" in bundle.content
    assert bundle.headers["content-type"].startswith("text/javascript")
    again = client.get(
        "/docs/swagger-ui-bundle.js", headers={"If-None-Match": bundle.headers["etag"]}
    )
    assert again.status_code == 304 and not again.content
    packed = client.get("/docs/swagger-ui.css", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert b".swagger-ui" in packed.content  # decoded by the client
    assert b"SwaggerUIBundle(" in client.get("/docs/docs.js").content

    missing = client.get("/docs/nothing.js")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert client.get("/redoc").status_code == 404  # FastAPI's CDN pages are off


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{why}; CI must run the browser tests (.ci/run installs chromium)")
    pytest.skip(why)


@pytest.mark.timeout(120)
def test_docs_render_offline_in_a_browser(live_server: LiveServer, tmp_path: Path) -> None:
    try:
        from playwright.sync_api import Route, expect, sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    if not Path(CHROMIUM).exists():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")

    blocked: list[str] = []
    problems: list[str] = []

    def loopback_only(route: Route) -> None:
        host = urlsplit(route.request.url).hostname
        if route.request.url.startswith(("data:", "blob:")) or host == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("internetdisconnected")

    with sync_playwright() as playwright:
        # Playwright's own browser download cannot work here: the system's Chromium
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 1000})
            context.route("**/*", loopback_only)
            page = context.new_page()
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}"))
            page.on(
                "response",
                lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None,
            )
            page.on(
                "console",
                lambda m: problems.append(m.text) if m.type in ("error", "warning") else None,
            )
            page.goto(live_server.url + "/docs")
            expect(page).to_have_title("r2v API reference")
            for path in ("/v1/videos/generations", ARK, "/v1/videos", "/healthz"):
                expect(
                    page.locator(f'.opblock-summary-path[data-path="{path}"]').first
                ).to_be_visible()
            expect(page.get_by_text("Seedance 2.0 API", exact=True)).to_be_visible()
            expect(page.get_by_text("Ark door", exact=True)).to_be_visible()

            # the create opens on a realistic request, and its answers are r2v's
            create = page.locator(
                ".opblock-post",
                has=page.locator('[data-path="/v1/videos/generations"]'),
            )
            create.locator(".opblock-summary").click()
            expect(create.get_by_text("https://example.com/refs/dancer.jpg").first).to_be_visible()
            codes = create.locator(".responses-wrapper tr.response").evaluate_all(
                "rows => rows.map(row => row.dataset.code)"
            )
            assert codes == ["200", "400", "401", "409", "413", "429", "503"]
            page.screenshot(path=str(tmp_path / "docs.png"), full_page=False)

            # r2v's additions say so
            listing = page.locator(".opblock-get", has=page.locator('[data-path="/v1/tasks"]'))
            listing.locator(".opblock-summary").click()
            expect(listing.get_by_text("x-r2v-extension").first).to_be_visible()
            artifacts = os.environ.get("R2V_TEST_ARTIFACTS")
            if artifacts:
                Path(artifacts).mkdir(parents=True, exist_ok=True)
                shutil.copy(tmp_path / "docs.png", Path(artifacts) / "api-docs.png")
        finally:
            browser.close()
    assert not blocked, f"the page reached beyond this server: {blocked}"
    assert not problems, problems
