"""Faults on PostgreSQL: workers SIGKILLed mid-render, the API killed mid-request, the
database restarted under load. Nothing accepted may be lost, stuck or completed twice."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from r2v.client import Client
from tests.fleet import Fleet, Process
from tests.mediafiles import decode_summary
from tests.services import PG_ADMIN, free_port, unavailable

FAST = "seedance-2.0-fast-reference-to-video"
TINY = {
    "model": FAST,
    "prompt": "a slow tide",
    "resolution": "480p",
    "duration": 4,
    "generate_audio": False,
}
KILL_TRIALS = int(os.environ.get("R2V_KILL_TRIALS", "100"))

pytestmark = pytest.mark.slow


@pytest.fixture
def fleet(tmp_path: Path, pg_url: str) -> Iterator[Fleet]:
    running = Fleet(
        tmp_path,
        {
            "R2V_DATABASE_URL": pg_url,
            "R2V_LEASE_SECONDS": "2",
            "R2V_HEARTBEAT_SECONDS": "0.3",
            "R2V_REAPER_INTERVAL_SECONDS": "0.3",
            "R2V_POLL_INTERVAL_SECONDS": "0.2",
            "R2V_MAX_ATTEMPTS": "60",
            "R2V_RATE_LIMIT_BURST": "1000",
            "R2V_RATE_LIMIT_PER_MINUTE": "10000",
        },
        shared_data=True,
    )
    yield running
    running.close()


def api_key(fleet: Fleet) -> str:
    made = subprocess.run(
        ["r2v", "keys", "create", "--data-dir", str(fleet.root / "data")],
        env=os.environ | fleet.env,
        capture_output=True,
        text=True,
        check=True,
    )
    return made.stdout.strip().splitlines()[-1]


def rows(pg_url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(pg_url.replace("+psycopg", "")) as conn:
        return list(conn.execute(query).fetchall())


AUDIT = """
CREATE TABLE completion_audit (task_id text NOT NULL, at timestamptz DEFAULT now());
CREATE FUNCTION audit_completion() RETURNS trigger AS $$
BEGIN
    INSERT INTO completion_audit (task_id) VALUES (NEW.id);
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER audit_completion AFTER UPDATE ON tasks
    FOR EACH ROW WHEN (NEW.status = 'completed') EXECUTE FUNCTION audit_completion();
"""


def audit_completions(pg_url: str) -> None:
    """Record, inside PostgreSQL, every write that marks a task completed."""
    with psycopg.connect(pg_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(AUDIT)


def completions(fleet: Fleet) -> Counter[str]:
    """Completions recorded in every worker's log, killed ones included."""
    done: Counter[str] = Counter()
    for process in fleet.processes:
        for entry in process.json_lines():
            words = str(entry.get("message", "")).split()
            if words[2:4] == ["completed", "in"]:
                done[words[1]] += 1
    return done


def test_workers_killed_at_random_points_lose_and_double_nothing(fleet: Fleet, pg_url: str) -> None:
    fleet.api()
    audit_completions(pg_url)
    key = api_key(fleet)
    headers = {"Authorization": f"Bearer {key}"}
    workers: list[Process] = [fleet.worker(f"w{n}") for n in range(3)]
    created: list[str] = []
    kills: list[float] = []  # seconds into its task each killed worker was
    rng = random.Random(1234)
    deadline = time.monotonic() + 600
    with httpx.Client(base_url=fleet.api_url, headers=headers, timeout=30) as client:

        def top_up() -> None:
            pending = rows(pg_url, "SELECT count(*) FROM tasks WHERE status = 'pending'")[0][0]
            for _ in range(max(0, 4 - int(pending))):  # type: ignore[call-overload]
                created.append(client.post("/v1/videos/generations", json=TINY).json()["id"])

        while len(kills) < KILL_TRIALS:
            assert time.monotonic() < deadline, f"only {len(kills)} kills in time"
            top_up()
            busy = rows(
                pg_url,
                "SELECT lease_owner, updated_at FROM tasks WHERE status = 'processing'",
            )
            by_pid = {str(owner).split(":")[1]: claimed for owner, claimed in busy}
            candidates = [w for w in workers if str(w.popen.pid) in by_pid]
            if not candidates:
                time.sleep(0.05)
                continue
            victim = rng.choice(candidates)
            time.sleep(rng.uniform(0.0, 0.4))  # a random point of the render
            victim.kill()
            kills.append(time.time() - float(by_pid[str(victim.popen.pid)]))  # type: ignore[arg-type]
            # the replacement starts while the others go on (it is ready in a second or two)
            workers[workers.index(victim)] = fleet.worker(f"w{len(kills) + 3}", wait=False)

        # no more kills: everything accepted must now finish
        settle = time.monotonic() + 240
        while True:
            open_tasks = rows(
                pg_url, "SELECT count(*) FROM tasks WHERE status IN ('pending', 'processing')"
            )[0][0]
            if open_tasks == 0:
                break
            assert time.monotonic() < settle, f"{open_tasks} tasks never finished"
            time.sleep(0.5)

        statuses = dict(rows(pg_url, "SELECT id, status FROM tasks"))
        assert set(statuses) == set(created), "a task was lost"
        failed = {t: s for t, s in statuses.items() if s != "completed"}
        assert not failed, f"tasks failed: {failed}"
        # every task was marked completed exactly once, in the database's own record...
        audited = Counter(str(r[0]) for r in rows(pg_url, "SELECT task_id FROM completion_audit"))
        assert set(audited) == set(created) and set(audited.values()) == {1}, audited
        # ...and no two workers believed they completed the same task (a worker killed
        # between its commit and its log line may leave a completion unlogged)
        done = completions(fleet)
        assert set(done) <= set(created)
        doubled = {task: n for task, n in done.items() if n > 1}
        assert not doubled, f"completed twice: {doubled}"
        # the kills landed all over the renders, not at one moment of them
        assert len(kills) >= KILL_TRIALS and max(kills) - min(kills) > 0.3, kills
        for task_id in rng.sample(created, 3):
            link = client.get(f"/v1/tasks/{task_id}").json()["results"][0]
            video = fleet.root / f"{task_id}.mp4"
            video.write_bytes(httpx.get(link).content)
            assert decode_summary(video).video_frames == 96


def test_the_api_killed_mid_request_loses_nothing_and_duplicates_nothing(
    fleet: Fleet, pg_url: str
) -> None:
    port = free_port()
    api = fleet.api(port=port)
    key = api_key(fleet)
    results: dict[int, str] = {}

    def create(n: int) -> None:
        with Client(fleet.api_url, api_key=key, max_retries=8) as client:
            task = client.videos.create(idempotency_key=f"job-{n}", **TINY)
            results[n] = task.id

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(create, n) for n in range(40)]
        time.sleep(0.3)  # some creates are in flight
        api.kill()
        restarted = threading.Thread(target=fleet.api, kwargs={"port": port})
        restarted.start()
        for future in futures:
            future.result(timeout=120)
        restarted.join()
    stored = [row[0] for row in rows(pg_url, "SELECT id FROM tasks")]
    assert len(results) == 40
    assert sorted(stored) == sorted(results.values()), "one task per request, none lost"
    assert httpx.get(f"{fleet.api_url}/readyz").status_code == 200


def test_a_postgres_restart_under_load(fleet: Fleet, pg_url: str) -> None:
    ctl = shutil.which("pg_ctlcluster")
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if ctl is None or not versions:
        unavailable("pg_ctlcluster is not here to restart PostgreSQL")
    fleet.api()
    key = api_key(fleet)
    fleet.worker("w1")
    fleet.worker("w2")
    command = [ctl, "--skip-systemctl-redirect", versions[-1], "main"]
    with Client(fleet.api_url, api_key=key, max_retries=10) as client:
        ids = [client.videos.create(**TINY).id for _ in range(10)]
        time.sleep(1.0)
        try:
            subprocess.run([*command, "restart"], check=True, capture_output=True, timeout=120)
        finally:
            subprocess.run([*command, "start"], capture_output=True, timeout=120)
        ids += [client.videos.create(**TINY).id for _ in range(5)]
        for task_id in ids:
            assert client.tasks.wait(task_id, timeout=240).status == "completed"
    with psycopg.connect(PG_ADMIN) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert httpx.get(f"{fleet.api_url}/readyz").status_code == 200
    assert sorted(r[0] for r in rows(pg_url, "SELECT id FROM tasks")) == sorted(ids)
