"""Scale-out for real: an API process and `r2v worker` processes on PostgreSQL and SeaweedFS."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from r2v.bootstrap import build_runtime
from r2v.client import Client, TaskObject
from r2v.settings import Settings
from tests.conftest import wait_for
from tests.fleet import Fleet
from tests.mediafiles import decode_summary, make_image
from tests.refserver import RefServer
from tests.services import S3Server

FAST = "seedance-2.0-fast-reference-to-video"
QUICK = {"model": FAST, "prompt": "a calm sea", "resolution": "480p", "duration": 4}

pytestmark = pytest.mark.slow


@pytest.fixture
def fleet(
    tmp_path: Path, pg_url: str, s3_server: S3Server, refserver: RefServer
) -> Iterator[Fleet]:
    running = Fleet(
        tmp_path,
        {"R2V_DATABASE_URL": pg_url, "R2V_FETCH_ALLOW_HOSTS": refserver.host_port}
        | s3_server.env(),
    )
    yield running
    running.close()


def key_for(fleet: Fleet) -> dict[str, str]:
    settings = Settings(**fleet_settings(fleet))
    runtime = build_runtime(settings)
    try:
        return {"Authorization": f"Bearer {runtime.keys.create('fleet').secret}"}
    finally:
        runtime.close()


def fleet_settings(fleet: Fleet) -> dict[str, Any]:
    env = fleet.env
    return {
        "data_dir": fleet.root / "admin",
        "database_url": env["R2V_DATABASE_URL"],
        "secret_key": env["R2V_SECRET_KEY"],
        "workers": 0,
        "storage": env["R2V_STORAGE"],
        "s3_bucket": env["R2V_S3_BUCKET"],
        "s3_endpoint_url": env["R2V_S3_ENDPOINT_URL"],
        "s3_access_key_id": env["R2V_S3_ACCESS_KEY_ID"],
        "s3_secret_access_key": env["R2V_S3_SECRET_ACCESS_KEY"],
    }


def completions(fleet: Fleet) -> Counter[str]:
    """How many times each task was recorded completed, across every process's log."""
    done: Counter[str] = Counter()
    for process in fleet.processes:
        for entry in process.json_lines():
            message = str(entry.get("message", ""))
            if message.endswith(" completed in attempt " + message.rsplit(" ", 1)[-1]):
                done[message.split()[1]] += 1
    return done


def test_api_and_two_workers_on_postgres_and_s3(
    fleet: Fleet, s3_server: S3Server, refserver: RefServer, tmp_path: Path
) -> None:
    fleet.api()
    fleet.worker("w1")
    fleet.worker("w2")
    headers = key_for(fleet)
    with httpx.Client(base_url=fleet.api_url, headers=headers, timeout=60) as client:
        picture = make_image(tmp_path / "upload.png", 360, 640, "PNG")
        with picture.open("rb") as handle:
            upload = client.post("/v1/files", files={"file": ("upload.png", handle)}).json()
        bodies = [QUICK] * 4 + [
            QUICK | {"prompt": "@Image1", "image_urls": [upload["url"]]},
            QUICK | {"prompt": "@Image1", "image_urls": [refserver.file_url("photo.jpg")]},
        ]
        ids = [client.post("/v1/videos/generations", json=body).json()["id"] for body in bodies]
        finished = [wait_for(client, task_id, {}, timeout=180) for task_id in ids]
        assert [task["status"] for task in finished] == ["completed"] * len(ids)

        link = finished[4]["results"][0]
        first = httpx.get(link)
        assert first.status_code == 307
        assert first.headers["location"].startswith(s3_server.endpoint)
        video = tmp_path / "from-s3.mp4"
        with Client(fleet.api_url, api_key=headers["Authorization"].split()[1]) as sdk:
            sdk.download(TaskObject.model_validate(finished[4]), video)
        assert (decode_summary(video).width, decode_summary(video).height) == (496, 864)

        assert httpx.get(f"{fleet.api_url}/readyz").json() == {"status": "ready"}
        metrics = httpx.get(
            f"{fleet.api_url}/metrics",
            headers={"Authorization": f"Bearer {fleet.env['R2V_METRICS_TOKEN']}"},
        ).text
        assert 'r2v_tasks{status="completed"} 6.0' in metrics
        assert "r2v_queue_depth 0.0" in metrics
        assert "r2v_http_request_duration_seconds_bucket" in metrics

    done = completions(fleet)
    assert set(done) == set(ids) and set(done.values()) == {1}
    by_worker = {
        name: {e.get("task_id") for e in p.json_lines() if e.get("task_id")}
        for name, p in zip(("api", "w1", "w2"), fleet.processes, strict=True)
    }
    assert by_worker["w1"] and by_worker["w2"], "both workers took tasks"
    assert not by_worker["w1"] & by_worker["w2"] - {None}

    # retention deletes the objects in the bucket
    runtime = build_runtime(Settings(**fleet_settings(fleet)))
    try:
        objects = s3_server.client().list_objects_v2(Bucket="r2v")["Contents"]  # type: ignore[attr-defined]
        assert any(o["Key"] == f"results/{ids[0]}/video.mp4" for o in objects)
        runtime.housekeeper.sweep(now=time.time() + 3 * 86400)  # the sweep of a later day
        # SeaweedFS may list a deleted object for a moment after the delete returned
        deadline = time.monotonic() + 10
        while (
            left := s3_server.client().list_objects_v2(Bucket="r2v").get("KeyCount")  # type: ignore[attr-defined]
        ) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert left == 0
    finally:
        runtime.close()
    gone = httpx.get(link)
    assert gone.status_code == 410


def test_notify_wakes_an_idle_worker_at_once(fleet: Fleet) -> None:
    fleet.api()
    fleet.worker("w1", R2V_POLL_INTERVAL_SECONDS="60")
    headers = key_for(fleet)
    with httpx.Client(base_url=fleet.api_url, headers=headers, timeout=30) as client:
        time.sleep(1.0)  # the worker has polled once and now sleeps for a minute
        task_id = client.post("/v1/videos/generations", json=QUICK).json()["id"]
        created = time.monotonic()
        while client.get(f"/v1/tasks/{task_id}").json()["status"] == "pending":
            assert time.monotonic() - created < 5, "LISTEN/NOTIFY did not wake the worker"
            time.sleep(0.05)


def test_sigterm_hands_the_task_back_and_another_worker_finishes_it(
    fleet: Fleet, refserver: RefServer
) -> None:
    fleet.api()
    first = fleet.worker("w1", R2V_SHUTDOWN_GRACE_SECONDS="0")
    headers = key_for(fleet)
    long_render = {
        "model": "seedance-2.0-reference-to-video",
        "prompt": "@Image1 slowly",
        "image_urls": [refserver.file_url("photo.jpg")],
        "resolution": "720p",
        "duration": 15,
    }
    with httpx.Client(base_url=fleet.api_url, headers=headers, timeout=30) as client:
        task_id = client.post("/v1/videos/generations", json=long_render).json()["id"]
        while client.get(f"/v1/tasks/{task_id}").json()["progress"] < 15:
            time.sleep(0.05)
        first.signal(signal.SIGTERM)
        assert first.popen.wait(15) == 0
        handed = client.get(f"/v1/tasks/{task_id}").json()
        # back in the queue at once: no lease to wait out
        assert handed["status"] == "pending", handed
        fleet.worker("w2")
        done = wait_for(client, task_id, {}, timeout=240)
        assert done["status"] == "completed"


def test_a_worker_for_engines_that_serve_nothing_says_so(fleet: Fleet) -> None:
    process = fleet._start("w-none", ["worker", "--engines", "diffusers"], {})
    assert process.popen.wait(60) == 2  # a setting that cannot work: wrong usage
    assert any("no model is served" in line for line in process.lines())
