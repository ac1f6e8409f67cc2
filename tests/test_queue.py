"""The task row as the queue, on a real SQLite file: claim, lease, fencing, reaper, retention."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from r2v import worker
from r2v.api import streaming
from r2v.api.streaming import task_events
from r2v.bootstrap import open_store
from r2v.db.connect import Database
from r2v.db.keys import SqlKeyStore
from r2v.db.migrate import MIGRATIONS
from r2v.db.store import SqlStore
from r2v.protocol import CreateVideoRequest, TaskObject, TaskStatus
from r2v.settings import Settings
from r2v.storage.local import LocalBlobStore
from r2v.tasks.keys import KeyService
from r2v.tasks.links import LinkSigner
from r2v.tasks.ports import ApiKey, KeyLimits
from r2v.tasks.record import TaskRecord
from r2v.tasks.service import TaskService
from r2v.worker import FETCH_SHARE, RENDER_SHARE, Housekeeper, Lease, TaskContext, WorkerConfig


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The same queue semantics on both dialects."""
    url = None
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
    database, _sql = open_store(Settings(data_dir=tmp_path, database_url=url))
    yield database
    database.dispose()


@pytest.fixture
def store(database: Database) -> SqlStore:
    return SqlStore(database)


@pytest.fixture
def service(store: SqlStore, tmp_path: Path) -> TaskService:
    blobs = LocalBlobStore(tmp_path / "results")
    roomy = KeyLimits(rate_per_minute=10_000, burst=1000, max_unfinished=1000)
    return TaskService(
        store, blobs, LinkSigner(b"k" * 32, 3600), lambda _request: 10, limits_of=lambda _k: roomy
    )


@pytest.fixture
def owner(database: Database) -> ApiKey:
    return KeyService(SqlKeyStore(database)).create("queue").key


def new_task(service: TaskService, owner: ApiKey) -> str:
    request = CreateVideoRequest(model="seedance-2.0-reference-to-video", prompt="a quiet lake")
    return service.create(owner, request).id


def test_sqlite_migrations_are_idempotent_and_use_wal(tmp_path: Path) -> None:
    for _ in range(2):
        database, _store = open_store(Settings(data_dir=tmp_path))
        database.dispose()
    with sqlite3.connect(tmp_path / "r2v.db") as conn:
        version = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        assert version == [(ScriptDirectory(str(MIGRATIONS)).get_current_head(),)]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"tasks", "api_keys", "files", "ix_tasks_status_created"} <= tables


def test_concurrent_claims_take_each_task_exactly_once(
    store: SqlStore, service: TaskService, owner: ApiKey
) -> None:
    created = {new_task(service, owner) for _ in range(40)}
    claimed: list[str] = []
    lock = threading.Lock()

    def claimer(n: int) -> None:
        while (record := store.claim(f"worker-{n}", 30, time.time())) is not None:
            with lock:
                claimed.append(record.id)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(claimed) == Counter(created)
    for task_id in created:
        record = store.get(task_id)
        assert record is not None
        assert record.status is TaskStatus.PROCESSING and record.attempt == 1


def test_claim_takes_the_oldest_pending_first(
    store: SqlStore, service: TaskService, owner: ApiKey
) -> None:
    first = new_task(service, owner)
    time.sleep(0.01)
    new_task(service, owner)
    record = store.claim("w", 30, time.time())
    assert record is not None and record.id == first


def test_fencing_refuses_writes_of_a_stale_attempt(
    store: SqlStore, service: TaskService, owner: ApiKey
) -> None:
    task_id = new_task(service, owner)
    now = time.time()
    first = store.claim("w1", lease_seconds=1, now=now)
    assert first is not None and first.attempt == 1
    assert store.set_progress(task_id, 1, 40)
    # the lease runs out; the reaper hands the task to another worker
    assert store.reap(now + 2, max_attempts=3).requeued == (task_id,)
    second = store.claim("w2", lease_seconds=30, now=now + 2)
    assert second is not None and second.id == task_id and second.attempt == 2
    # the first worker wakes up: nothing it writes lands
    assert not store.heartbeat(task_id, 1, now + 60)
    assert not store.set_progress(task_id, 1, 90)
    assert not store.complete(
        task_id, 1, result_key="x", video_duration=5, now=now, result_expires_at=now + 10
    )
    assert not store.fail(task_id, 1, code="generation_failed", message="x", now=now)
    record = store.get(task_id)
    assert record is not None
    assert record.status is TaskStatus.PROCESSING and record.lease_owner == "w2"
    # progress survived the requeue and never went down
    assert record.progress == 40
    assert store.complete(
        task_id, 2, result_key="k", video_duration=5, now=now, result_expires_at=now + 10
    )
    done = store.get(task_id)
    assert done is not None and done.status is TaskStatus.COMPLETED and done.progress == 100


def test_progress_only_rises(store: SqlStore, service: TaskService, owner: ApiKey) -> None:
    task_id = new_task(service, owner)
    store.claim("w", 30, time.time())
    assert store.set_progress(task_id, 1, 55)
    assert store.set_progress(task_id, 1, 20)
    record = store.get(task_id)
    assert record is not None and record.progress == 55


def test_a_requeued_task_never_shows_less_progress_than_it_reached(
    store: SqlStore,
    service: TaskService,
    owner: ApiKey,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker, "PROGRESS_WRITE_INTERVAL", 0.0)  # every step is written
    task_id = new_task(service, owner)

    def wire() -> TaskObject:
        return service.get(owner.id, task_id, "http://r2v.test")

    def context(record: TaskRecord | None) -> TaskContext:
        assert record is not None
        lease = Lease(store, record, WorkerConfig())  # never started: never lost
        return TaskContext(store, record, lease, tmp_path, time.time() + 60, threading.Event())

    now = time.time()
    context(store.claim("w1", 1, now)).stage(RENDER_SHARE).progress(0.2)
    assert wire().progress == 27
    # the worker dies; once its lease runs out the reaper puts the task back in the queue
    assert store.reap(now + 2, max_attempts=3).requeued == (task_id,)
    pending = wire()
    assert pending.status is TaskStatus.PENDING and pending.progress == 27
    seen = [pending.progress]
    retry = context(store.claim("w2", 30, now + 2))
    for share in (FETCH_SHARE, RENDER_SHARE):
        for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
            retry.stage(share).progress(fraction)
            seen.append(wire().progress)
    # the new attempt's bar is laid out above what the lost one reached: it moves at once
    assert seen[2] > 27 and seen == sorted(seen) and seen[-1] < 100
    assert store.complete(
        task_id, 2, result_key="k", video_duration=5, now=now, result_expires_at=now + 10
    )
    assert wire().progress == 100


def test_the_event_stream_never_shows_progress_going_down(
    service: TaskService, owner: ApiKey
) -> None:
    task = service.get(owner.id, new_task(service, owner), "http://r2v.test")
    states = [(TaskStatus.PROCESSING, 40), (TaskStatus.PROCESSING, 30), (TaskStatus.PENDING, 30)]
    states += [(TaskStatus.PROCESSING, 35), (TaskStatus.PROCESSING, 50)]
    states += [(TaskStatus.COMPLETED, 100)]
    answers = iter(task.model_copy(update={"status": s, "progress": p}) for s, p in states)

    async def connected() -> bool:
        return False

    async def stream() -> list[tuple[str, int]]:
        events = task_events(lambda: next(answers), connected, keepalive_seconds=60)
        shown = [json.loads(e.rsplit("data: ", 1)[1]) async for e in events if "data: " in e]
        return [(event["status"], event["progress"]) for event in shown]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(streaming, "POLL_SECONDS", 0.0)
        shown = asyncio.run(stream())
    assert shown == [
        ("processing", 40), ("pending", 40), ("processing", 40), ("processing", 50),
        ("completed", 100),
    ]  # fmt: skip


def test_reaper_fails_a_task_out_of_attempts(
    store: SqlStore, service: TaskService, owner: ApiKey
) -> None:
    task_id = new_task(service, owner)
    now = time.time()
    for attempt in range(1, 4):
        claimed = store.claim("w", 1, now)
        assert claimed is not None and claimed.attempt == attempt
        now += 2
        outcome = store.reap(now, max_attempts=3)
    assert outcome.failed == (task_id,)
    record = store.get(task_id)
    assert record is not None
    assert record.status is TaskStatus.FAILED
    assert record.error_code == "service_error"
    assert "3 times" in (record.error_message or "")
    assert store.claim("w", 1, now) is None


def test_a_live_lease_is_not_reaped(store: SqlStore, service: TaskService, owner: ApiKey) -> None:
    task_id = new_task(service, owner)
    now = time.time()
    store.claim("w", 10, now)
    assert store.heartbeat(task_id, 1, now + 20)
    assert store.reap(now + 15, max_attempts=3).requeued == ()


def test_fail_without_attempt_only_touches_unfinished_tasks(
    store: SqlStore, service: TaskService, owner: ApiKey
) -> None:
    task_id = new_task(service, owner)
    assert store.fail(task_id, None, code="request_cancelled", message="x", now=time.time())
    assert not store.fail(task_id, None, code="other", message="y", now=time.time())
    record = store.get(task_id)
    assert record is not None and record.error_code == "request_cancelled"


def test_retention_deletes_results_and_stale_workspaces(
    store: SqlStore, service: TaskService, owner: ApiKey, tmp_path: Path
) -> None:
    blobs = LocalBlobStore(tmp_path / "results")
    workspaces = tmp_path / "work"
    task_id = new_task(service, owner)
    now = time.time()
    store.claim("w", 30, now)
    source = tmp_path / "out.mp4"
    source.write_bytes(b"video")
    blobs.put(f"{task_id}/video.mp4", source)
    store.complete(
        task_id,
        1,
        result_key=f"{task_id}/video.mp4",
        video_duration=5,
        now=now,
        result_expires_at=now + 100,
    )
    leftover = workspaces / "task-unified-1-deadbeef"
    leftover.mkdir(parents=True)
    busy = workspaces / new_task(service, owner)
    busy.mkdir()

    Housekeeper(
        store, blobs, workspaces, max_attempts=3, stale_workspace_seconds=0, clock=lambda: now + 50
    ).sweep()
    assert blobs.locate(f"{task_id}/video.mp4") is not None
    assert not leftover.exists()
    assert busy.exists()  # its task is still pending

    Housekeeper(
        store, blobs, workspaces, max_attempts=3, stale_workspace_seconds=0, clock=lambda: now + 101
    ).sweep()
    assert blobs.locate(f"{task_id}/video.mp4") is None
    record = store.get(task_id)
    assert record is not None and record.result_key is None
    assert record.status is TaskStatus.COMPLETED


def test_claims_go_first_to_the_keys_with_the_fewest_running(
    database: Database, store: SqlStore, service: TaskService, owner: ApiKey
) -> None:
    other = KeyService(SqlKeyStore(database)).create("other").key
    backlog = [new_task(service, owner) for _ in range(3)]
    late = new_task(service, other)  # created after the whole backlog
    claimed = [store.claim(f"w{n}", 30, time.time()) for n in range(4)]
    order = [record.id if record else None for record in claimed]
    # the backlog's oldest first; then the other key's task, though younger, since the
    # backlog's key already has one running; then the backlog again
    assert order == [backlog[0], late, backlog[1], backlog[2]]


def test_a_per_key_running_cap_leaves_the_key_s_other_tasks_waiting(
    database: Database, service: TaskService, owner: ApiKey
) -> None:
    capped = SqlStore(database, max_running_per_key=1)
    other = KeyService(SqlKeyStore(database)).create("other").key
    backlog = [new_task(service, owner) for _ in range(3)]
    late = new_task(service, other)
    first = capped.claim("w1", 30, time.time())
    second = capped.claim("w2", 30, time.time())
    third = capped.claim("w3", 30, time.time())
    assert (first and first.id, second and second.id, third) == (backlog[0], late, None)
    # when the key's render ends, its next task is claimable again
    assert capped.complete(backlog[0], 1, result_key="x", video_duration=4, now=time.time(),
                           result_expires_at=time.time() + 60)  # fmt: skip
    fourth = capped.claim("w4", 30, time.time())
    assert fourth is not None and fourth.id == backlog[1]
