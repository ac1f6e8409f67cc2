"""What an operator sees in the first hour: the start-up lines, one access line a request,
and a worker's own port (metrics and readiness)."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from r2v import logs
from r2v.cli.server import banner
from r2v.errors import ServiceUnavailable
from r2v.metrics import Metrics, serve
from r2v.settings import Settings
from tests.fleet import Process, wait_healthy
from tests.services import free_port

TASK = "task-unified-1700000000-abcdefgh"


@pytest.fixture
def access_lines() -> Iterator[io.StringIO]:
    """What the access log writes, as JSON lines."""
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("r2v.access")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    yield written
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_every_request_gets_one_access_line_with_its_request_id(
    api: TestClient, auth: dict[str, str], access_lines: io.StringIO
) -> None:
    body = {"model": "seedance-2.0-fast-reference-to-video", "prompt": "a calm sea"}
    created = api.post("/v1/videos/generations", json=body, headers=auth | {"X-Request-ID": "c-1"})
    task_id = created.json()["id"]
    api.get(f"/v1/tasks/{task_id}", headers=auth | {"X-Request-ID": "p-1"})  # the poll path
    api.get(f"/results/{TASK}/video.mp4?expires=1&signature=SECRET-SIGNATURE")
    api.post("/v1/videos/generations", content=b"x" * 2_000_000, headers=auth)  # refused early
    lines = [json.loads(line) for line in access_lines.getvalue().splitlines()]
    assert [(e["method"], e["path"], e["status"]) for e in lines] == [
        ("POST", "/v1/videos/generations", 200),
        ("GET", f"/v1/tasks/{task_id}", 200),
        ("GET", f"/results/{TASK}/video.mp4", 403),
        ("POST", "/v1/videos/generations", 413),
    ]
    assert [e["request_id"] for e in lines[:2]] == ["c-1", "p-1"]
    assert all(e["request_id"] and e["duration_ms"] >= 0 for e in lines)
    assert lines[1]["message"].startswith(f"GET /v1/tasks/{task_id} 200 ")
    assert "SECRET" not in access_lines.getvalue()  # a link's signature is never logged


def test_r2v_serve_under_json_logs_writes_json_lines_only(tmp_path: Path) -> None:
    port = free_port()
    server = Process(
        ["serve", "--port", str(port), "--workers", "0", "--data-dir", str(tmp_path / "data")],
        {"R2V_LOG_FORMAT": "json"},
        tmp_path / "serve.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, server.popen)
        first_key = next(e for e in server.json_lines() if "api_key" in e)
        auth = {"Authorization": f"Bearer {first_key['api_key']}", "X-Request-ID": "ops-1"}
        assert httpx.get(f"{url}/v1/tasks", headers=auth).status_code == 200
    finally:
        server.stop()
    lines = [line for line in server.lines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line, uvicorn's own included
    started = next(e for e in entries if "url" in e)
    assert started["url"] == url and started["message"].startswith("r2v ")
    assert started["workers"] == 0 and started["files"] == str((tmp_path / "data").resolve())
    polled = [e for e in entries if e.get("request_id") == "ops-1"]
    assert [(e["logger"], e["path"], e["status"]) for e in polled] == [
        ("r2v.access", "/v1/tasks", 200)
    ]  # one line: uvicorn's own access log stays off


def test_the_scale_out_banner_names_the_database_and_the_bucket(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "never-made"
    settings = Settings(
        data_dir=data,
        database_url="postgresql+psycopg://r2v:hunter2@db.internal:5432/r2v",
        storage="s3",
        s3_bucket="videos",
        s3_prefix="r2v/",
        log_format="json",
        workers=0,
    )
    created = SimpleNamespace(secret="r2v_secret", webhook_secret="whsec_x")
    banner(settings, created)
    out = capsys.readouterr().out
    key, started = (json.loads(line) for line in out.splitlines())
    assert key["api_key"] == "r2v_secret" and key["webhook_secret"] == "whsec_x"
    assert "--data-dir" not in key["message"]
    assert started["tasks"] == "postgresql+psycopg://r2v:***@db.internal:5432/r2v"
    assert started["files"] == "s3://videos/r2v/"
    assert "hunter2" not in out and str(data) not in out and not data.exists()

    banner(Settings(data_dir=data, workers=2), None)
    text = capsys.readouterr().out
    assert text.startswith("r2v ") and f"(data in {data.resolve()}, 2 worker(s))" in text


def test_a_worker_s_port_serves_metrics_and_readiness_and_nothing_else(tmp_path: Path) -> None:
    port = free_port()
    worker = Process(
        ["worker", "--data-dir", str(tmp_path / "data")],
        {"R2V_METRICS_PORT": str(port)},
        tmp_path / "worker.log",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        ready = _first_answer(f"{base}/readyz", worker)
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}
        metrics = httpx.get(f"{base}/metrics")
        assert metrics.status_code == 200 and "r2v_queue_depth 0.0" in metrics.text
        for path in ("/", "/metrics/extra", "/v1/tasks", "/healthz"):
            missing = httpx.get(base + path)
            assert missing.status_code == 404, path
            assert missing.json()["error"]["code"] == "not_found"
    finally:
        worker.stop()


def test_readiness_on_the_metrics_port_is_503_while_the_database_is_down() -> None:
    def down() -> None:
        raise ServiceUnavailable("the database does not answer: connection refused")

    server = serve(Metrics(), "127.0.0.1", free_port(), ready=down)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        answer = httpx.get(f"{base}/readyz")
        assert answer.status_code == 503
        assert answer.json()["error"]["message"].startswith("the database does not answer")
        assert httpx.get(f"{base}/metrics?x=1").status_code == 200
    finally:
        server.shutdown()
        server.server_close()


def _first_answer(url: str, process: Process) -> httpx.Response:
    deadline = time.monotonic() + 60
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError as exc:
            failed: Any = exc
        if process.popen.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("\n".join(process.lines())) from failed
        time.sleep(0.1)
