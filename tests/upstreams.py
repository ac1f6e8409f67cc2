"""r2v set up as a gateway: settings that send a model upstream, and a server to run them."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from r2v.bootstrap import build_runtime
from r2v.settings import Settings
from tests.arkfake import FakeArk
from tests.conftest import LiveServer, make_settings
from tests.refserver import RefServer

FAST = "seedance-2.0-fast-reference-to-video"
STANDARD = "seedance-2.0-reference-to-video"
TERMINAL = ("completed", "failed")


def upstream_model(api: str, url: str, key: str, **more: Any) -> dict[str, Any]:
    """The settings of one model sent upstream."""
    return {
        "engine": "upstream",
        "upstream_api": api,
        "upstream_url": url,
        "upstream_api_key": key,
        **more,
    }


def gateway_settings(
    data_dir: Path,
    refserver: RefServer,
    models: dict[str, dict[str, Any]],
    allow: Sequence[str] = (),
    **overrides: Any,
) -> Settings:
    """Test settings for a server whose `models` go upstream: quick polls, roomy limits."""
    values: dict[str, Any] = {
        "fetch_allow_hosts": [refserver.host_port, *allow],
        "upstream_poll_min_seconds": 0.2,
        "upstream_poll_max_seconds": 1.0,
        "rate_limit_burst": 1000,
        "rate_limit_per_minute": 100000,
        "max_unfinished_tasks": 1000,
        "models": models,
    }
    values.update(overrides)
    return make_settings(data_dir, refserver, **values)


@contextmanager
def ark_gateway(
    data_dir: Path, refserver: RefServer, ark: FakeArk, *, public: bool = False, **overrides: Any
) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    """r2v under uvicorn with the fast model sent to `ark`; (server, auth headers).

    `public` sets R2V_PUBLIC_URL to the server's own loopback URL, so the fake can reach it
    (callbacks, shared uploads).
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    models = overrides.pop("models", {FAST: upstream_model("ark", ark.url, ark.api_key)})
    settings = gateway_settings(
        data_dir,
        refserver,
        models,
        allow=[ark.host_port],
        **({"public_url": url} if public else {}),
        **overrides,
    )
    runtime = build_runtime(settings)
    try:
        with LiveServer(runtime, sock) as server:
            key = runtime.keys.create("test").secret
            yield server, {"Authorization": f"Bearer {key}"}
    finally:
        runtime.close()


def wait_task(
    client: httpx.Client, task_id: str, timeout: float = 60.0, until: tuple[str, ...] = TERMINAL
) -> dict[str, Any]:
    """Poll a task until its status is one of `until`."""
    deadline = time.monotonic() + timeout
    task: dict[str, Any] = {}
    while time.monotonic() < deadline:
        task = client.get(f"/v1/tasks/{task_id}").json()
        if task.get("status") in until:
            return task
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} never reached {until}: {task}")


def eventually(predicate: Callable[[], object], timeout: float = 30.0) -> None:
    """Wait until `predicate()` holds; fail the test when it never does."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("the condition never held")
        time.sleep(0.05)
