"""Crashes around upstream tasks: nothing is submitted twice, nothing is lost.

A server `kill -9`ed while tasks wait on Ark resumes polling the same upstream tasks; a
create that may have reached Ark is never sent again; one that may have reached a unified
upstream is sent again under the same Idempotency-Key; on PostgreSQL, a fleet of gateways
shares the work, survives losing one of them, and relays Ark's callbacks by NOTIFY.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from r2v.bootstrap import build_runtime
from r2v.protocol import CreateVideoRequest
from r2v.settings import model_key
from tests.arkfake import FakeArk
from tests.conftest import LiveServer, make_settings
from tests.fleet import Fleet, Process, wait_healthy
from tests.refserver import RefServer
from tests.services import free_port
from tests.upstreams import (
    FAST,
    ark_gateway,
    eventually,
    gateway_settings,
    upstream_model,
    wait_task,
)

PREFIX = f"R2V_MODELS__{model_key(FAST).upper()}__"


def ark_env(ark: FakeArk, refserver: RefServer) -> dict[str, str]:
    """The environment that sends the fast model to `ark`, with quick leases and polls."""
    return {
        f"{PREFIX}ENGINE": "upstream",
        f"{PREFIX}UPSTREAM_API": "ark",
        f"{PREFIX}UPSTREAM_URL": ark.url,
        f"{PREFIX}UPSTREAM_API_KEY": ark.api_key,
        "R2V_FETCH_ALLOW_HOSTS": f"{refserver.host_port},{ark.host_port}",
        "R2V_LEASE_SECONDS": "2",
        "R2V_HEARTBEAT_SECONDS": "0.3",
        "R2V_REAPER_INTERVAL_SECONDS": "0.3",
        "R2V_POLL_INTERVAL_SECONDS": "0.2",
        "R2V_UPSTREAM_POLL_MIN_SECONDS": "0.2",
        "R2V_UPSTREAM_POLL_MAX_SECONDS": "0.5",
        "R2V_RATE_LIMIT_BURST": "1000",
    }


def new_key(data: Path, env: dict[str, str]) -> dict[str, str]:
    made = subprocess.run(
        [sys.executable, "-m", "r2v.cli", "keys", "create", "--data-dir", str(data)],
        env=os.environ | env,
        capture_output=True,
        text=True,
        check=True,
    )
    return {"Authorization": f"Bearer {made.stdout.strip().splitlines()[-1]}"}


def serve(data: Path, env: dict[str, str], log: Path) -> tuple[Process, str]:
    port = free_port()
    process = Process(["serve", "--port", str(port), "--data-dir", str(data)], env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process.popen)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}:\n" + "\n".join(process.lines())) from exc
    return process, url


@pytest.mark.slow
def test_a_server_killed_mid_flight_resumes_the_same_upstream_tasks(
    tmp_path: Path, refserver: RefServer, media_dir: Path
) -> None:
    data = tmp_path / "data"
    with FakeArk(media_dir / "clip.mp4", queue_seconds=1.0, run_seconds=4.0) as ark:
        env = ark_env(ark, refserver)
        auth = new_key(data, env)
        first, url = serve(data, env, tmp_path / "first.log")
        try:
            with httpx.Client(base_url=url, headers=auth, timeout=30) as client:
                ids = [
                    client.post(
                        "/v1/videos/generations",
                        json={"model": FAST, "prompt": f"tide {n}",
                              "image_urls": [refserver.file_url("photo.jpg")]},
                    ).json()["id"]
                    for n in range(3)
                ]  # fmt: skip
                # every upstream id is stored (r2v polls only after storing it)
                eventually(lambda: len(ark.creates) == 3 and len(ark.gets) == 3)
        finally:
            first.kill()
        second, url = serve(data, env, tmp_path / "second.log")
        try:
            with httpx.Client(base_url=url, headers=auth, timeout=30) as client:
                ended = [wait_task(client, task_id, timeout=60) for task_id in ids]
                video = httpx.get(ended[0]["results"][0], timeout=30).content
        finally:
            second.stop()
    assert [task["status"] for task in ended] == ["completed"] * 3
    assert len(ark.creates) == 3, "an upstream task was created twice"
    assert video == ark.video


def test_an_ark_create_that_may_have_been_sent_is_not_sent_again(
    tmp_path: Path, refserver: RefServer, media_dir: Path
) -> None:
    with FakeArk(media_dir / "clip.mp4") as ark:
        # a server that takes tasks but follows none (API only)
        with ark_gateway(tmp_path / "data", refserver, ark, workers=0) as (server, auth):
            with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
                task_id = client.post(
                    "/v1/videos/generations", json={"model": FAST, "prompt": "x"}
                ).json()["id"]
            # what a gateway killed between recording its intent and storing the answer
            # leaves behind
            with server.runtime.database.write.begin() as conn:
                conn.execute(
                    sa.text(
                        "UPDATE tasks SET upstream_state = 'submitting', upstream_target = "
                        ":target, upstream_since = :now, attempt = 1 WHERE id = :id"
                    ),
                    {
                        "target": f"ark {ark.url} dreamina-seedance-2-0-fast-260128",
                        "now": time.time(),
                        "id": task_id,
                    },
                )
        with ark_gateway(tmp_path / "data", refserver, ark) as (server, _auth):
            with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
                task = wait_task(client, task_id)
    assert task["status"] == "failed"
    assert task["error"]["code"] == "service_error"
    assert "not paid for twice" in task["error"]["message"]
    assert ark.creates == []


def test_a_unified_create_that_may_have_been_sent_is_sent_again_under_the_same_key(
    tmp_path: Path, refserver: RefServer
) -> None:
    upstream_runtime = build_runtime(make_settings(tmp_path / "upstream", refserver))
    try:
        with LiveServer(upstream_runtime) as upstream:
            upstream_key = upstream_runtime.keys.create("chain").secret
            port = upstream.url.rsplit(":", 1)[1]
            settings = gateway_settings(
                tmp_path / "front",
                refserver,
                {FAST: upstream_model("unified", upstream.url, upstream_key)},
                allow=[f"127.0.0.1:{port}"],
            )
            api_only = build_runtime(settings.model_copy(update={"workers": 0}))
            key = api_only.keys.create("front").secret
            record_body = {"model": FAST, "prompt": "a lantern", "duration": 4}
            task = api_only.tasks.create(
                api_only.keys.authenticate(f"Bearer {key}"),
                CreateVideoRequest(**record_body),
            )
            # the first create reached the upstream, then the gateway died before storing
            # its answer: the row says "submitting", the upstream has the task
            first = httpx.post(
                f"{upstream.url}/v1/videos/generations",
                headers={"Authorization": f"Bearer {upstream_key}", "Idempotency-Key": task.id},
                json={
                    "model": FAST, "prompt": "a lantern", "resolution": "720p",
                    "aspect_ratio": "adaptive", "duration": 4, "generate_audio": True,
                    "seed": -1, "image_urls": [], "video_urls": [], "audio_urls": [],
                },
            ).json()  # fmt: skip
            with api_only.database.write.begin() as conn:
                conn.execute(
                    sa.text(
                        "UPDATE tasks SET upstream_state = 'submitting', upstream_target = "
                        ":target, upstream_since = :now, attempt = 1 WHERE id = :id"
                    ),
                    {"target": f"unified {upstream.url} {FAST}", "now": time.time(), "id": task.id},
                )
            api_only.close()
            front = build_runtime(settings)
            try:
                with LiveServer(front) as server:
                    with httpx.Client(
                        base_url=server.url, headers={"Authorization": f"Bearer {key}"}
                    ) as client:
                        done = wait_task(client, task.id, timeout=60)
            finally:
                front.close()
            listed = httpx.get(
                f"{upstream.url}/v1/tasks", headers={"Authorization": f"Bearer {upstream_key}"}
            ).json()["data"]
    finally:
        upstream_runtime.close()
    assert done["status"] == "completed", done
    assert [t["id"] for t in listed] == [first["id"]]  # one upstream task, found again


@pytest.fixture
def ark_fleet(
    tmp_path: Path, pg_url: str, refserver: RefServer, media_dir: Path
) -> Iterator[tuple[Fleet, FakeArk]]:
    with FakeArk(media_dir / "clip.mp4", queue_seconds=0.5, run_seconds=6.0) as ark:
        fleet = Fleet(
            tmp_path, ark_env(ark, refserver) | {"R2V_DATABASE_URL": pg_url}, shared_data=True
        )
        try:
            yield fleet, ark
        finally:
            fleet.close()


@pytest.mark.slow
def test_gateways_on_postgres_survive_losing_the_one_that_holds_the_tasks(
    ark_fleet: tuple[Fleet, FakeArk], pg_url: str
) -> None:
    fleet, ark = ark_fleet
    fleet.api()
    auth = new_key(fleet.root / "data", fleet.env)
    gateways = [fleet.worker(f"g{n}", "--engines", "upstream") for n in range(2)]
    engine = sa.create_engine(pg_url)

    def holders() -> dict[str, int]:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT lease_owner, count(*) FROM tasks WHERE status = 'processing' "
                        "GROUP BY lease_owner")
            ).all()  # fmt: skip
        return {str(owner).split(":")[1]: int(count) for owner, count in rows}

    with httpx.Client(base_url=fleet.api_url, headers=auth, timeout=30) as client:
        ids = [
            client.post("/v1/videos/generations", json={"model": FAST, "prompt": f"k{n}"}).json()[
                "id"
            ]
            for n in range(20)
        ]
        eventually(lambda: len(ark.creates) == 20 and len(ark.gets) == 20, timeout=30)
        held = holders()
        victim = max(gateways, key=lambda g: held.get(str(g.popen.pid), 0))
        lost = held[str(victim.popen.pid)]
        victim.kill()
        ended = [wait_task(client, task_id, timeout=90) for task_id in ids]
    with engine.connect() as conn:
        attempts = dict(conn.execute(sa.text("SELECT id, attempt FROM tasks")).all())
    engine.dispose()
    assert [task["status"] for task in ended] == ["completed"] * 20
    assert len(ark.creates) == 20, "an upstream task was created twice"
    # the survivor resumed exactly the tasks the killed one held, each polled by one process
    assert lost > 0 and sorted(attempts.values()).count(2) == lost
    assert set(attempts.values()) <= {1, 2}


@pytest.mark.slow
def test_an_ark_callback_to_the_api_reaches_the_gateway_of_another_process(
    ark_fleet: tuple[Fleet, FakeArk],
) -> None:
    fleet, ark = ark_fleet
    port = free_port()
    fleet.env |= {
        "R2V_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "R2V_UPSTREAM_POLL_MIN_SECONDS": "60",
        "R2V_UPSTREAM_POLL_MAX_SECONDS": "60",
    }
    fleet.api(port=port)
    auth = new_key(fleet.root / "data", fleet.env)
    fleet.worker("g0", "--engines", "upstream")
    with httpx.Client(base_url=fleet.api_url, headers=auth, timeout=30) as client:
        task_id = client.post("/v1/videos/generations", json={"model": FAST, "prompt": "x"}).json()[
            "id"
        ]
        # polls are a minute apart: only the callbacks, relayed by NOTIFY, finish it this soon
        task = wait_task(client, task_id, timeout=20)
    assert task["status"] == "completed", task
    assert ark.callback_answers[:3] == [200, 200, 200]
