"""Two keys, one misbehaving: the other's renders and webhooks still go out on time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from r2v.bootstrap import build_runtime
from tests.conftest import LiveServer, make_settings, wait_for
from tests.refserver import RefServer
from tests.test_webhooks import Receiver

FAST = "seedance-2.0-fast-reference-to-video"
QUICK = {"model": FAST, "prompt": "a calm sea", "resolution": "480p", "duration": 4}


@pytest.fixture
def slow_receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.delay = 2.5
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def fast_receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.shutdown()
    server.server_close()


def finished_at(server: LiveServer, task_id: str) -> float:
    with server.runtime.database.read.connect() as conn:
        found = conn.execute(
            sa.text("SELECT finished_at FROM tasks WHERE id = :id"), {"id": task_id}
        ).scalar_one()
    return float(found)


def test_a_key_dripping_twelve_references_neither_stalls_another_nor_costs_twelve_deadlines(
    tmp_path: Path, refserver: RefServer
) -> None:
    settings = make_settings(
        tmp_path / "data",
        refserver,
        workers=2,
        max_running_per_key=1,
        fetch_deadline_seconds=3.0,
        fetch_read_timeout_seconds=2.0,
        rate_limit_burst=100,
    )
    runtime = build_runtime(settings)
    with LiveServer(runtime) as server:
        hostile = {"Authorization": f"Bearer {runtime.keys.create('hostile').secret}"}
        polite = {"Authorization": f"Bearer {runtime.keys.create('polite').secret}"}
        drip = refserver.url("/drip?seconds=60")  # a byte every 0.2 s: never a read timeout
        slow = {
            **QUICK,
            "prompt": "@Image1",
            "image_urls": [f"{drip}&n={n}" for n in range(9)],
            "video_urls": [f"{drip}&v={n}" for n in range(3)],
        }
        with httpx.Client(base_url=server.url, timeout=30) as client:
            stalling = [
                client.post("/v1/videos/generations", json=slow, headers=hostile).json()["id"]
                for _ in range(3)
            ]
            time.sleep(0.5)  # the hostile key's first task is in the middle of its intake
            started = time.monotonic()
            mine = client.post("/v1/videos/generations", json=QUICK, headers=polite).json()["id"]
            done = wait_for(client, mine, polite, timeout=60)
            waited = time.monotonic() - started
            first = wait_for(client, stalling[0], hostile, timeout=60)
            second = client.get(f"/v1/tasks/{stalling[1]}", headers=hostile).json()
    runtime.close()
    assert done["status"] == "completed"
    # the polite task ran beside the hostile one, not after its three deadlines
    assert waited < 3.0, waited
    assert finished_at(server, mine) < finished_at(server, stalling[0])
    # twelve dripping references cost one deadline (3 s), not three rounds of four
    assert first["status"] == "failed" and first["error"]["code"] == "reference_fetch_failed"
    assert "longer than 3 s" in first["error"]["message"]
    elapsed = finished_at(server, stalling[0]) - first["created"]
    assert elapsed < 6.0, elapsed
    # the hostile key's next task waits its turn: one running at a time for it
    assert second["status"] in ("pending", "processing", "failed")


def test_slow_receivers_of_one_key_do_not_hold_back_another_key_s_webhook(
    tmp_path: Path, refserver: RefServer, slow_receiver: Receiver, fast_receiver: Receiver
) -> None:
    settings = make_settings(
        tmp_path / "data",
        refserver,
        fetch_allow_hosts=[refserver.host_port, slow_receiver.host_port, fast_receiver.host_port],
        webhook_timeout_seconds=8.0,
        rate_limit_burst=100,
    )
    runtime = build_runtime(settings)
    with LiveServer(runtime) as server:
        hostile = {"Authorization": f"Bearer {runtime.keys.create('hostile').secret}"}
        polite = {"Authorization": f"Bearer {runtime.keys.create('polite').secret}"}
        failing = {**QUICK, "prompt": "@Image1", "image_urls": [refserver.url("/status/404")]}
        with httpx.Client(base_url=server.url, timeout=30) as client:
            slow_ids = [
                client.post(
                    "/v1/videos/generations",
                    json={**failing, "callback_url": f"http://{slow_receiver.host_port}/h{n}"},
                    headers=hostile,
                ).json()["id"]
                for n in range(10)
            ]
            for task_id in slow_ids:
                wait_for(client, task_id, hostile, timeout=30)
            time.sleep(0.3)  # the slow deliveries are under way
            started = time.monotonic()
            mine = client.post(
                "/v1/videos/generations",
                json={**failing, "callback_url": f"http://{fast_receiver.host_port}/mine"},
                headers=polite,
            ).json()["id"]
            wait_for(client, mine, polite, timeout=30)
            assert fast_receiver.arrived.wait(10), "the polite key's webhook never came"
            waited = time.monotonic() - started
            # every slow delivery is made once, two at a time (their host's share)
            deadline = time.monotonic() + 40
            while len(slow_receiver.received) < 10 and time.monotonic() < deadline:
                time.sleep(0.2)
    runtime.close()
    assert waited < 3.0, waited
    assert len(slow_receiver.received) == 10
    ids = {headers["webhook-id"] for headers, _body in slow_receiver.received}
    assert len(ids) == 10, "a delivery was sent twice"
    arrivals = sorted(slow_receiver.arrivals)
    at_once = max(sum(1 for t in arrivals if a <= t < a + 2.0) for a in arrivals)
    assert at_once <= 2  # one slow host gets its two slots, never more
