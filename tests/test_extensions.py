"""The API extensions against a real uvicorn: cancel, list, SSE, idempotency, Prefer: wait,
per-key limits."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from r2v.bootstrap import Runtime, build_runtime
from tests.conftest import LiveServer, make_settings, wait_for
from tests.refserver import RefServer

FAST = "seedance-2.0-fast-reference-to-video"
STANDARD = "seedance-2.0-reference-to-video"
QUICK = {"model": FAST, "prompt": "a calm sea", "resolution": "480p", "duration": 4}


@pytest.fixture
def client(live_server: LiveServer, auth: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, headers=auth, timeout=60) as http:
        yield http


@pytest.fixture
def idle(tmp_path: Path, refserver: RefServer) -> Iterator[tuple[Runtime, httpx.Client]]:
    """A live server with no workers: tasks stay pending."""
    runtime = build_runtime(
        make_settings(tmp_path / "idle", refserver, workers=0, sse_keepalive_seconds=0.3)
    )
    try:
        headers = {"Authorization": f"Bearer {runtime.keys.create('idle').secret}"}
        with (
            LiveServer(runtime) as server,
            httpx.Client(base_url=server.url, headers=headers, timeout=30) as http,
        ):
            yield runtime, http
    finally:
        runtime.close()


def create(client: httpx.Client, body: dict[str, Any], **headers: str) -> httpx.Response:
    return client.post("/v1/videos/generations", json=body, headers=headers)


def test_cancelling_a_pending_task(idle: tuple[Runtime, httpx.Client]) -> None:
    _runtime, client = idle
    task_id = create(client, QUICK).json()["id"]
    cancelled = client.delete(f"/v1/tasks/{task_id}")
    assert cancelled.status_code == 200
    body = cancelled.json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "request_cancelled"
    assert body["task_info"]["can_cancel"] is False
    again = client.delete(f"/v1/tasks/{task_id}")
    assert again.status_code == 409
    assert again.json()["error"]["type"] == "conflict_error"
    assert client.delete("/v1/tasks/task-unified-1700000000-abcdefgh").status_code == 404


@pytest.mark.slow
def test_cancelling_a_running_render_stops_it_within_a_second(
    client: httpx.Client, refserver: RefServer, settings: Any
) -> None:
    long_render = {
        "model": STANDARD,
        "prompt": "@Image1 then @Image2",
        "image_urls": [refserver.file_url("photo.jpg"), refserver.file_url("poster.png")],
        "resolution": "720p",
        "duration": 15,
    }
    task_id = create(client, long_render).json()["id"]
    deadline = time.monotonic() + 60
    while (task := client.get(f"/v1/tasks/{task_id}").json())["progress"] < 20:
        assert task["status"] in ("pending", "processing") and time.monotonic() < deadline
        time.sleep(0.05)
    cancelled = client.delete(f"/v1/tasks/{task_id}").json()
    stopped_at = time.monotonic()
    assert cancelled["status"] == "failed"
    assert cancelled["error"]["code"] == "request_cancelled"
    # the only worker is free again once the render has stopped: a new task gets claimed
    follower = create(client, QUICK).json()["id"]
    while client.get(f"/v1/tasks/{follower}").json()["status"] == "pending":
        assert time.monotonic() - stopped_at < 5, "the cancelled render did not stop"
        time.sleep(0.05)
    assert time.monotonic() - stopped_at < 1.5
    final = wait_for(client, task_id, {})
    assert final["status"] == "failed" and final["error"]["code"] == "request_cancelled"
    assert "results" not in final
    assert not (settings.data_dir / "blobs" / "results" / task_id).exists()


def test_listing_tasks_newest_first_with_a_cursor(idle: tuple[Runtime, httpx.Client]) -> None:
    _runtime, client = idle
    created = [create(client, QUICK).json()["id"] for _ in range(5)]
    client.delete(f"/v1/tasks/{created[0]}")
    first = client.get("/v1/tasks", params={"limit": 2}).json()
    assert first["object"] == "list"
    assert [t["id"] for t in first["data"]] == created[::-1][:2]
    assert first["has_more"] is True and first["last_id"] == created[3]
    second = client.get("/v1/tasks", params={"limit": 2, "after": first["last_id"]}).json()
    assert [t["id"] for t in second["data"]] == created[::-1][2:4]
    last = client.get("/v1/tasks", params={"limit": 2, "after": second["last_id"]}).json()
    assert [t["id"] for t in last["data"]] == [created[0]] and last["has_more"] is False
    failed = client.get("/v1/tasks", params={"status": "failed"}).json()
    assert [t["id"] for t in failed["data"]] == [created[0]]
    assert client.get("/v1/tasks", params={"status": "done"}).status_code == 400
    assert client.get("/v1/tasks", params={"after": "task-unified-1-aaaaaaaa"}).status_code == 400
    assert client.get("/v1/tasks", params={"limit": 0}).status_code == 400


def test_sse_streams_progress_in_order_and_closes(
    client: httpx.Client, refserver: RefServer
) -> None:
    body = QUICK | {"image_urls": [refserver.file_url("photo.jpg")], "prompt": "@Image1"}
    task_id = create(client, body).json()["id"]
    events: list[dict[str, Any]] = []
    ids: list[int] = []
    with client.stream("GET", f"/v1/tasks/{task_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
            elif line.startswith("id:"):
                ids.append(int(line[3:]))
    order = {"pending": 0, "processing": 1, "completed": 2, "failed": 2}
    ranks = [order[event["status"]] for event in events]
    progress = [event["progress"] for event in events]
    assert ranks == sorted(ranks) and progress == sorted(progress)
    assert events[-1]["status"] == "completed" and events[-1]["results"]
    assert ids == list(range(1, len(events) + 1))
    assert len({(e["status"], e["progress"]) for e in events}) == len(events)


def test_sse_keeps_idle_connections_alive(idle: tuple[Runtime, httpx.Client]) -> None:
    _runtime, client = idle
    task_id = create(client, QUICK).json()["id"]
    seen: list[str] = []
    with client.stream("GET", f"/v1/tasks/{task_id}/events") as response:
        started = time.monotonic()
        for line in response.iter_lines():
            seen.append(line)
            if line.startswith(": keep-alive") or time.monotonic() - started > 5:
                break
    assert ": keep-alive" in seen
    assert client.get("/v1/tasks/task-unified-1700000000-abcdefgh/events").status_code == 404


def test_idempotency_key_replays_and_conflicts(idle: tuple[Runtime, httpx.Client]) -> None:
    _runtime, client = idle
    first = create(client, QUICK, **{"Idempotency-Key": "order-42"})
    again = create(client, QUICK, **{"Idempotency-Key": "order-42"})
    assert first.status_code == again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    # the same body spelled differently is the same request
    spelled = {k: v for k, v in QUICK.items() if k != "resolution"} | {"quality": "480p"}
    assert (
        create(client, spelled, **{"Idempotency-Key": "order-42"}).json()["id"]
        == (first.json()["id"])
    )
    conflict = create(client, QUICK | {"duration": 5}, **{"Idempotency-Key": "order-42"})
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "idempotency_key_reused"
    other = create(client, QUICK, **{"Idempotency-Key": "order-43"})
    assert other.json()["id"] != first.json()["id"]
    assert create(client, QUICK).json()["id"] != create(client, QUICK).json()["id"]
    assert len(client.get("/v1/tasks", params={"limit": 100}).json()["data"]) == 4


def test_prefer_wait_holds_the_answer_until_done(client: httpx.Client) -> None:
    response = create(client, QUICK, Prefer="wait=60")
    assert response.status_code == 200
    assert response.headers["preference-applied"] == "wait=60"
    assert response.json()["status"] == "completed"
    assert response.json()["results"]
    assert "retry-after" not in response.headers


def test_prefer_wait_gives_up_after_n_seconds(idle: tuple[Runtime, httpx.Client]) -> None:
    _runtime, client = idle
    started = time.monotonic()
    response = create(client, QUICK, Prefer="respond-async, wait=1")
    assert 0.9 < time.monotonic() - started < 5
    assert response.json()["status"] == "pending"
    assert response.headers["preference-applied"] == "wait=1"


def test_per_key_rate_limit_and_unfinished_cap(idle: tuple[Runtime, httpx.Client]) -> None:
    runtime, client = idle
    slow = runtime.keys.create("slow", rate_per_minute=2)
    headers = {"Authorization": f"Bearer {slow.secret}"}
    answers = [client.post("/v1/videos/generations", json=QUICK, headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    limited = answers[-1]
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(limited.headers["retry-after"]) <= 30

    capped = runtime.keys.create("capped", max_unfinished=2)
    headers = {"Authorization": f"Bearer {capped.secret}"}
    ids = [client.post("/v1/videos/generations", json=QUICK, headers=headers) for _ in range(3)]
    assert [a.status_code for a in ids] == [200, 200, 429]
    assert "unfinished" in ids[-1].json()["error"]["message"]
    # finishing one (here: cancelling it) makes room again
    client.delete(f"/v1/tasks/{ids[0].json()['id']}", headers=headers)
    assert client.post("/v1/videos/generations", json=QUICK, headers=headers).status_code == 200
    assert runtime.keys.update_limits(capped.key.id, rate_per_minute=None, max_unfinished=5)
    assert client.post("/v1/videos/generations", json=QUICK, headers=headers).status_code == 200


def test_callback_url_must_be_https_or_allow_listed(idle: tuple[Runtime, httpx.Client]) -> None:
    _runtime, client = idle
    for url, fragment in [
        ("http://example.com/hook", "https"),
        ("https://10.0.0.5/hook", "private"),
        ("https://169.254.169.254/hook", "private"),
    ]:
        refused = create(client, QUICK | {"callback_url": url})
        assert refused.status_code == 400, url
        assert refused.json()["error"]["param"] == "callback_url"
        assert fragment in refused.json()["error"]["message"]
    assert create(client, QUICK | {"callback_url": "https://example.com/hook"}).status_code == 200


def test_concurrent_polls_of_two_keys_stay_apart(idle: tuple[Runtime, httpx.Client]) -> None:
    # concurrent GETs share one database read; each must still see only its own key's tasks
    runtime, client = idle
    other = {"Authorization": f"Bearer {runtime.keys.create('other').secret}"}
    mine = [create(client, QUICK).json()["id"] for _ in range(10)]
    theirs = [
        client.post("/v1/videos/generations", json=QUICK, headers=other).json()["id"]
        for _ in range(10)
    ]
    callers = {"me": (dict(client.headers), set(mine)), "them": (other, set(theirs))}

    async def storm() -> list[tuple[str, str, httpx.Response]]:
        async with httpx.AsyncClient(base_url=str(client.base_url), timeout=30) as http:

            async def get(who: str, task_id: str) -> tuple[str, str, httpx.Response]:
                headers = callers[who][0]
                return who, task_id, await http.get(f"/v1/tasks/{task_id}", headers=headers)

            jobs = [
                get(who, task_id) for _ in range(5) for who in callers for task_id in mine + theirs
            ]
            return await asyncio.gather(*jobs)

    answers = asyncio.run(storm())
    assert len(answers) == 200
    for who, task_id, response in answers:
        if task_id in callers[who][1]:
            assert response.status_code == 200 and response.json()["id"] == task_id
        else:
            assert response.status_code == 404, (who, task_id)


def test_a_task_s_request_reads_back_as_sent_to_its_key_only(
    idle: tuple[Runtime, httpx.Client], refserver: RefServer
) -> None:
    runtime, client = idle
    body = {
        **QUICK,
        "prompt": "@Image1 at dusk",
        "image_urls": [refserver.file_url("photo.jpg")],
        "aspect_ratio": "adaptive",
        "seed": 9,
        "first_frame_image": 1,
    }
    task_id = create(client, body).json()["id"]
    read = client.get(f"/v1/tasks/{task_id}/request")
    assert read.status_code == 200
    assert {name: read.json()[name] for name in body} == body
    assert read.json()["generate_audio"] is True  # the defaults it was given, too
    stranger = {"Authorization": f"Bearer {runtime.keys.create('other').secret}"}
    hidden = client.get(f"/v1/tasks/{task_id}/request", headers=stranger)
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "task_not_found"
