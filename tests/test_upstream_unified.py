"""The unified upstream: r2v in front of another r2v (a real one, rendering with the
compositor), as it would sit in front of any aggregator that speaks this API."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from r2v.bootstrap import Runtime, build_runtime
from tests.conftest import LiveServer, make_settings
from tests.refserver import RefServer
from tests.upstreams import FAST, eventually, gateway_settings, upstream_model, wait_task


@contextmanager
def r2v_server(runtime: Runtime) -> Iterator[tuple[LiveServer, str]]:
    try:
        with LiveServer(runtime) as server:
            yield server, runtime.keys.create("chain").secret
    finally:
        runtime.close()


@contextmanager
def chain(
    tmp_path: Path, refserver: RefServer, **upstream_settings: object
) -> Iterator[tuple[httpx.Client, httpx.Client, Runtime]]:
    """(client of the front r2v, client of the upstream r2v, the upstream's runtime)."""
    upstream_runtime = build_runtime(
        make_settings(tmp_path / "upstream", refserver, **upstream_settings)
    )
    with r2v_server(upstream_runtime) as (upstream, upstream_key):
        port = upstream.url.rsplit(":", 1)[1]
        front = build_runtime(
            gateway_settings(
                tmp_path / "front",
                refserver,
                {FAST: upstream_model("unified", upstream.url, upstream_key)},
                allow=[f"127.0.0.1:{port}"],  # the upstream's result links are on loopback
            )
        )
        with r2v_server(front) as (server, front_key):
            with (
                httpx.Client(
                    base_url=server.url,
                    headers={"Authorization": f"Bearer {front_key}"},
                    timeout=30,
                ) as front_client,
                httpx.Client(
                    base_url=upstream.url,
                    headers={"Authorization": f"Bearer {upstream_key}"},
                    timeout=30,
                ) as upstream_client,
            ):
                yield front_client, upstream_client, upstream_runtime


def only_upstream_task(upstream: httpx.Client) -> dict[str, object]:
    listed = upstream.get("/v1/tasks").json()["data"]
    assert len(listed) == 1, listed
    task: dict[str, object] = listed[0]
    return task


@pytest.mark.slow
def test_r2v_in_front_of_r2v_mirrors_the_video_byte_for_byte(
    tmp_path: Path, refserver: RefServer
) -> None:
    with chain(tmp_path, refserver) as (front, upstream, upstream_runtime):
        body = {
            "model": FAST,
            "prompt": "@Image1 drifts, @Audio1 hums",
            "image_urls": [refserver.file_url("photo.jpg")],
            "audio_urls": [refserver.file_url("tone.wav")],
            "resolution": "480p",
            "aspect_ratio": "4:3",
            "duration": 4,
            "seed": 77,
            "callback_url": "https://hooks.example.com/front-only",
        }
        created = front.post("/v1/videos/generations", json=body)
        assert created.status_code == 200, created.text
        task = wait_task(front, created.json()["id"], timeout=120)
        assert task["status"] == "completed", task
        theirs = only_upstream_task(upstream)
        mine = httpx.get(task["results"][0], timeout=30).content
        original = httpx.get(theirs["results"][0], timeout=30).content  # type: ignore[index]
        with upstream_runtime.database.read.connect() as conn:
            keys = conn.execute(sa.text("SELECT idempotency_key, task_id FROM idempotency_keys"))
            idempotency = keys.all()
            stored = conn.execute(sa.text("SELECT request FROM tasks")).scalar_one()
    assert mine == original and mine[4:8] == b"ftyp"
    assert task["task_info"]["seed"] == 77 == theirs["task_info"]["seed"]  # type: ignore[index]
    assert task["task_info"]["video_duration"] == 4
    assert task["usage"]["upstream"] == theirs["usage"]
    # the upstream task was created under our task id as its Idempotency-Key
    assert [tuple(row) for row in idempotency] == [(task["id"], theirs["id"])]
    # the request went as asked, without our client's webhook
    assert '"callback_url":null' in stored and "front-only" not in stored
    assert '"aspect_ratio":"4:3"' in stored and '"seed":77' in stored


def test_cancel_goes_to_the_upstream_server(tmp_path: Path, refserver: RefServer) -> None:
    # the upstream takes tasks but renders none (an API-only server): ours waits, queued
    with chain(tmp_path, refserver, workers=0) as (front, upstream, _runtime):
        created = front.post("/v1/videos/generations", json={"model": FAST, "prompt": "fog"})
        task_id = created.json()["id"]
        eventually(lambda: upstream.get("/v1/tasks").json()["data"])
        assert front.get(f"/v1/tasks/{task_id}").json()["status"] == "pending"
        assert front.delete(f"/v1/tasks/{task_id}").status_code == 200
        eventually(lambda: only_upstream_task(upstream)["status"] == "failed", timeout=10)
        theirs = only_upstream_task(upstream)
    assert theirs["error"] == {  # type: ignore[comparison-overlap]
        "code": "request_cancelled",
        "message": "the task was cancelled by a DELETE request",
    }


def test_the_upstream_s_failure_code_and_message_come_through(
    tmp_path: Path, refserver: RefServer
) -> None:
    # the upstream gives up on downloads the front could make
    slow = {"fetch_deadline_seconds": 0.001}
    with chain(tmp_path, refserver, **slow) as (front, upstream, _runtime):
        body = {"model": FAST, "prompt": "@Image1", "image_urls": [refserver.file_url("photo.jpg")]}
        created = front.post("/v1/videos/generations", json=body)
        assert created.status_code == 200, created.text
        task = wait_task(front, created.json()["id"], timeout=60)
        theirs = only_upstream_task(upstream)
    assert task["status"] == "failed"
    assert task["error"]["code"] == "reference_fetch_failed"
    assert task["error"]["message"].startswith("the upstream server failed the task")
    assert theirs["error"]["message"] in task["error"]["message"]  # type: ignore[index]


def test_a_create_the_upstream_refuses_fails_at_once_with_its_reason(
    tmp_path: Path, refserver: RefServer
) -> None:
    # the upstream refuses loopback references at create (400): no retry, no upstream task
    with chain(tmp_path, refserver, fetch_allow_hosts=[]) as (front, upstream, _runtime):
        body = {"model": FAST, "prompt": "@Image1", "image_urls": [refserver.file_url("photo.jpg")]}
        created = front.post("/v1/videos/generations", json=body)
        task = wait_task(front, created.json()["id"], timeout=60)
        assert upstream.get("/v1/tasks").json()["data"] == []
    assert task["error"]["code"] == "invalid_parameters"
    message = task["error"]["message"]
    assert message.startswith("the upstream server refused the task (HTTP 400, invalid_parameters")
    assert "private or reserved address" in message
