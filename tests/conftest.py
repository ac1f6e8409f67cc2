"""Shared fixtures: generated media behind a real loopback HTTP server, and r2v itself.

`runtime` and `api` build the real server from settings pointing at a temp data dir;
`live_server` runs it under a real uvicorn on a loopback port.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from r2v.api.connections import http_protocol
from r2v.bootstrap import Runtime, build_app, build_runtime
from r2v.settings import Settings
from tests.mediafiles import make_image, make_mp3, make_video, make_wav
from tests.refserver import RefServer
from tests.services import pg_url, s3_server  # noqa: F401 - shared fixtures

TERMINAL = ("completed", "failed")
METRICS_TOKEN = "metrics-test-token"
METRICS_AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}
"""What opens /metrics on the API port of the servers the tests build."""


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    make_image(root / "photo.jpg", 640, 480, "JPEG", seed=1)
    make_image(root / "poster.png", 360, 640, "PNG", seed=2)
    make_image(root / "square.webp", 400, 400, "WEBP", seed=3)
    make_video(root / "clip.mp4", 320, 240, seconds=2.0, audio=True, pan_px_per_frame=2)
    make_video(root / "clip.mov", 240, 320, seconds=2.0, audio=False, container="mov")
    make_video(root / "short.mp4", 160, 120, seconds=1.0, audio=False)
    make_wav(root / "tone.wav", seconds=3.0)
    make_mp3(root / "tone.mp3", seconds=3.0)
    make_wav(root / "long.wav", seconds=16.0, rate=8000)
    (root / "page.jpg").write_bytes(b"<!doctype html><html><body>not an image</body></html>")
    (root / "clip-as.jpg").write_bytes((root / "clip.mp4").read_bytes())
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 200)
    whole = (root / "clip.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(whole[: len(whole) // 3])
    return root


@pytest.fixture(scope="session")
def refserver(media_dir: Path) -> Iterator[RefServer]:
    with RefServer(media_dir) as server:
        yield server


def make_settings(data_dir: Path, refserver: RefServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "fetch_allow_hosts": [refserver.host_port],
        "workers": 1,
        "poll_interval_seconds": 0.2,
        "heartbeat_seconds": 0.5,
        "lease_seconds": 5.0,
        "reaper_interval_seconds": 0.5,
        "fetch_deadline_seconds": 10.0,
        "fetch_read_timeout_seconds": 3.0,
        "metrics_token": METRICS_TOKEN,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path, refserver: RefServer) -> Settings:
    return make_settings(tmp_path / "data", refserver)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    built = build_runtime(settings)
    yield built
    built.close()


@pytest.fixture
def api(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(build_app(runtime)) as client:
        yield client


@pytest.fixture
def key(runtime: Runtime) -> str:
    return runtime.keys.create("test").secret


@pytest.fixture
def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class LiveServer:
    """r2v under a real uvicorn, on a loopback port, in a thread."""

    def __init__(self, runtime: Runtime, sock: socket.socket | None = None) -> None:
        self.runtime = runtime
        if sock is None:
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
        self._sock = sock
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        protocol = http_protocol(
            header_timeout_seconds=runtime.settings.header_timeout_seconds,
            min_body_bytes_per_second=runtime.settings.min_body_bytes_per_second,
        )  # as `r2v serve` runs it
        config = uvicorn.Config(
            build_app(runtime), log_level="warning", lifespan="on", http=protocol
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(20)
        self._sock.close()


@pytest.fixture
def live_server(runtime: Runtime) -> Iterator[LiveServer]:
    with LiveServer(runtime) as server:
        yield server


def wait_for(
    client: httpx.Client | TestClient,
    task_id: str,
    headers: dict[str, str],
    timeout: float = 120.0,
) -> dict[str, Any]:
    """Poll a task until it is terminal; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = client.get(f"/v1/tasks/{task_id}", headers=headers)
        assert response.status_code == 200, response.text
        last = response.json()
        if last["status"] in TERMINAL:
            return last
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} still {last.get('status')} after {timeout} s: {last}")
