"""The SQL adapter of the task store: the task row is the queue.

One implementation serves SQLite and PostgreSQL. The claim is a single
`UPDATE … WHERE id = (SELECT … LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *`: PostgreSQL
skips rows other claimers hold, SQLite (which ignores the lock clause) runs it inside
`BEGIN IMMEDIATE`, so only one claimer at a time is in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from r2v.db.connect import Database
from r2v.db.schema import (
    api_keys,
    files,
    idempotency_keys,
    rate_buckets,
    tasks,
    webhook_attempts,
    webhook_deliveries,
)
from r2v.db.webhooks import enqueue_webhooks
from r2v.errors import Conflict, PayloadTooLarge, RateLimited
from r2v.protocol import TaskErrorCode, TaskStatus
from r2v.tasks.files import quota_message
from r2v.tasks.ports import FileRecord, Idempotency, KeyLimits, ReapOutcome, TaskQuery
from r2v.tasks.record import UPSTREAM_WAITING, TaskRecord

FAIR_WINDOW = 256
"""Pending tasks a claim looks at to choose fairly between keys."""
# Any number fixed for r2v: the advisory lock that serializes capped claims on PostgreSQL.
_CLAIM_LOCK = 0x72327601

TASKS_CHANNEL = "r2v_tasks"
"""The PostgreSQL channel a NOTIFY on it says: a task may be waiting."""

PENDING = TaskStatus.PENDING.value
PROCESSING = TaskStatus.PROCESSING.value
COMPLETED = TaskStatus.COMPLETED.value
FAILED = TaskStatus.FAILED.value


def to_record(row: Any) -> TaskRecord:
    values = dict(row._mapping)
    values["status"] = TaskStatus(values["status"])
    values["request_json"] = values.pop("request")
    return TaskRecord(**values)


def _to_row(record: TaskRecord) -> dict[str, Any]:
    return {
        column.name: getattr(record, column.name)
        for column in tasks.columns
        if column.name not in ("status", "request")
    } | {
        "status": record.status.value,
        "request": record.request_json,
    }


# The hottest reads, built once: pollers ask for their task many times a second.
_TASK_BY_ID = sa.select(tasks).where(tasks.c.id == sa.bindparam("task_id"))
_OWN_TASK = _TASK_BY_ID.where(tasks.c.key_id == sa.bindparam("key_id"))
_TASKS_BY_IDS = sa.select(tasks).where(tasks.c.id.in_(sa.bindparam("ids", expanding=True)))


def _wire_status_is(status: str) -> sa.ColumnElement[bool]:
    # What `TaskRecord.wire_status` says, in SQL: an upstream task waiting on the upstream
    # is pending to its client although its row is processing (a gateway holds it).
    state = sa.func.coalesce(tasks.c.upstream_state, "")
    waiting = sa.and_(tasks.c.status == PROCESSING, state.in_(UPSTREAM_WAITING))
    if status == PENDING:
        return sa.or_(tasks.c.status == PENDING, waiting)
    if status == PROCESSING:
        return sa.and_(tasks.c.status == PROCESSING, sa.not_(waiting))
    return tasks.c.status == status


def _eligible(models: Sequence[str] | None) -> list[sa.ColumnElement[bool]]:
    where = [tasks.c.status == PENDING]
    if models is not None:
        where.append(tasks.c.model.in_(list(models)))
    return where


def claiming(
    owner: str,
    lease_seconds: float,
    now: float,
    models: Sequence[str] | None,
    limit: int,
    *,
    only: str | None = None,
    **values: Any,
) -> sa.Update:
    """The statement that takes the `limit` oldest pending tasks (of `models`, when given;
    the task `only`, when given): processing, attempt + 1, leased to `owner`, with `values`
    set too; it returns them. Rows another claimer holds are skipped, not waited for."""
    if only is not None:  # one task, found by its key: no scan of the queue
        chosen = sa.select(tasks.c.id).where(tasks.c.id == only, tasks.c.status == PENDING)
    else:
        chosen = (
            sa.select(tasks.c.id)
            .where(*_eligible(models))
            .order_by(tasks.c.created_at, tasks.c.id)
            .limit(limit)
        )
    # A materialized CTE runs exactly once, so the rows it locked are the rows updated (a
    # subquery inside IN may be planned as a join and run again on PostgreSQL, updating
    # fewer rows than it locked).
    oldest = chosen.with_for_update(skip_locked=True).cte("oldest").prefix_with("MATERIALIZED")
    # (the CTE chose pending rows and locked them: the update needs no second look at the
    # status, which would also lead SQLite to scan every pending row for these ids)
    return (
        tasks.update()
        .where(tasks.c.id.in_(sa.select(oldest.c.id)))
        .values(
            status=PROCESSING,
            attempt=tasks.c.attempt + 1,
            lease_owner=owner,
            lease_expires_at=now + lease_seconds,
            updated_at=now,
            **values,
        )
        .returning(*tasks.columns)
    )


def fair_order(
    window: Sequence[tuple[str, str]], running: dict[str, int], cap: int | None
) -> list[str]:
    """The ids of `window` ((task id, key id), oldest first) in the order to try claiming
    them: the tasks of keys with the fewest renders running first, oldest first among
    equals; keys at `cap` left out. One key's backlog never holds another's task back."""
    ranked = [
        (running.get(key_id, 0), position, task_id)
        for position, (task_id, key_id) in enumerate(window)
        if cap is None or running.get(key_id, 0) < cap
    ]
    return [task_id for _running, _position, task_id in sorted(ranked)]


def fenced(task_id: str, attempt: int) -> sa.ColumnElement[bool]:
    # Only the holder of the current attempt of a processing task may write to it.
    return sa.and_(tasks.c.id == task_id, tasks.c.attempt == attempt, tasks.c.status == PROCESSING)


class SqlStore:
    """`TaskStore` and `FileStore` over SQLAlchemy Core."""

    def __init__(self, database: Database, *, max_running_per_key: int | None = None) -> None:
        self._db = database
        self._max_running_per_key = max_running_per_key

    # tasks -----------------------------------------------------------------------------

    def create(
        self,
        record: TaskRecord,
        *,
        limits: KeyLimits,
        idempotency: Idempotency | None,
        now: float,
    ) -> str:
        with self._db.write.begin() as conn:
            # Serialize a key's creates: PostgreSQL locks its row, SQLite's BEGIN IMMEDIATE
            # already holds the one write lock.
            conn.execute(
                sa.select(api_keys.c.id).where(api_keys.c.id == record.key_id).with_for_update()
            )
            if idempotency is not None:
                earlier = self._idempotent_answer(conn, record.key_id, idempotency, now)
                if earlier is not None:
                    return earlier
            self._take_token(conn, record.key_id, limits, now)
            unfinished = conn.execute(
                sa.select(sa.func.count())
                .select_from(tasks)
                .where(tasks.c.key_id == record.key_id, tasks.c.status.in_([PENDING, PROCESSING]))
            ).scalar_one()
            if unfinished >= limits.max_unfinished:
                raise RateLimited(
                    f"this API key has {unfinished} unfinished tasks, its limit: wait for some "
                    "to finish (or cancel them) before creating more",
                    retry_after=10,
                )
            conn.execute(tasks.insert().values(**_to_row(record)))
            self._notify(conn)
            if idempotency is not None:
                conn.execute(
                    idempotency_keys.insert().values(
                        key_id=record.key_id,
                        idempotency_key=idempotency.key,
                        body_hash=idempotency.body_hash,
                        task_id=record.id,
                        created_at=now,
                    )
                )
        return record.id

    @staticmethod
    def _idempotent_answer(
        conn: sa.Connection, key_id: str, idempotency: Idempotency, now: float
    ) -> str | None:
        where = sa.and_(
            idempotency_keys.c.key_id == key_id,
            idempotency_keys.c.idempotency_key == idempotency.key,
        )
        seen = conn.execute(sa.select(idempotency_keys).where(where)).first()
        if seen is None:
            return None
        if seen.created_at < now - idempotency.window_seconds:
            conn.execute(idempotency_keys.delete().where(where))  # expired: a fresh start
            return None
        if seen.body_hash != idempotency.body_hash:
            raise Conflict(
                "this Idempotency-Key was used with a different body in the last 24 hours: "
                "use a new key for a new request",
                code="idempotency_key_reused",
            )
        return str(seen.task_id)

    @staticmethod
    def _take_token(
        conn: sa.Connection, key_id: str, limits: KeyLimits, now: float, what: str = "tasks"
    ) -> None:
        # A token bucket in a row: refill by the elapsed time, then take one token.
        per_second = limits.rate_per_minute / 60
        bucket = conn.execute(
            sa.select(rate_buckets).where(rate_buckets.c.key_id == key_id)
        ).first()
        tokens = float(limits.burst)
        if bucket is not None:
            tokens = min(tokens, bucket.tokens + (now - bucket.updated_at) * per_second)
        if tokens < 1:
            raise RateLimited(
                f"this API key may make {limits.rate_per_minute} {what} a minute: "
                "slow down and retry after the time in Retry-After",
                retry_after=(1 - tokens) / per_second if per_second else 60,
            )
        values = {"tokens": tokens - 1, "updated_at": now}
        if bucket is None:
            conn.execute(rate_buckets.insert().values(key_id=key_id, **values))
        else:
            conn.execute(
                rate_buckets.update().where(rate_buckets.c.key_id == key_id).values(values)
            )

    def list_tasks(
        self,
        key_id: str,
        limit: int,
        before: TaskRecord | None,
        status: str | None,
        *,
        oldest_first: bool = False,
    ) -> list[TaskRecord]:
        query = sa.select(tasks).where(tasks.c.key_id == key_id)
        if status is not None:
            query = query.where(_wire_status_is(status))
        if before is not None:
            # `before` in the listing's order: older when newest first, newer when oldest
            if oldest_first:
                query = query.where(
                    sa.or_(
                        tasks.c.created_at > before.created_at,
                        sa.and_(tasks.c.created_at == before.created_at, tasks.c.id > before.id),
                    )
                )
            else:
                query = query.where(
                    sa.or_(
                        tasks.c.created_at < before.created_at,
                        sa.and_(tasks.c.created_at == before.created_at, tasks.c.id < before.id),
                    )
                )
        order: tuple[sa.ColumnElement[Any], ...] = (tasks.c.created_at, tasks.c.id)
        if not oldest_first:
            order = (tasks.c.created_at.desc(), tasks.c.id.desc())
        query = query.order_by(*order).limit(limit)
        with self._db.read.connect() as conn:
            return [to_record(row) for row in conn.execute(query)]

    def find_tasks(
        self, key_id: str, query: TaskQuery, offset: int, limit: int
    ) -> tuple[int, list[TaskRecord]]:
        where: list[sa.ColumnElement[bool]] = [tasks.c.key_id == key_id]
        if query.status is not None:
            where.append(_wire_status_is(query.status))
        if query.cancelled is not None:
            cancelled = tasks.c.error_code == TaskErrorCode.REQUEST_CANCELLED.value
            where.append(sa.and_(tasks.c.error_code.is_not(None), cancelled))
            if not query.cancelled:
                where[-1] = sa.or_(tasks.c.error_code.is_(None), sa.not_(cancelled))
        if query.has_result is not None:
            present = tasks.c.result_key.is_not(None)
            where.append(present if query.has_result else sa.not_(present))
        if query.ids is not None:
            where.append(tasks.c.id.in_(list(query.ids)))
        if query.models is not None:
            where.append(tasks.c.model.in_(list(query.models)))
        counted = sa.select(sa.func.count()).select_from(tasks).where(*where)
        page = (
            sa.select(tasks)
            .where(*where)
            .order_by(tasks.c.created_at.desc(), tasks.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        with self._db.read.connect() as conn:
            total = int(conn.execute(counted).scalar_one())
            return total, [to_record(row) for row in conn.execute(page)]

    def delete_task(self, task_id: str, key_id: str) -> TaskRecord | None:
        with self._db.write.begin() as conn:
            row = conn.execute(_OWN_TASK, {"task_id": task_id, "key_id": key_id}).first()
            if row is None:
                return None
            deliveries = sa.select(webhook_deliveries.c.id).where(
                webhook_deliveries.c.task_id == task_id
            )
            conn.execute(
                webhook_attempts.delete().where(webhook_attempts.c.delivery_id.in_(deliveries))
            )
            conn.execute(webhook_deliveries.delete().where(webhook_deliveries.c.task_id == task_id))
            conn.execute(idempotency_keys.delete().where(idempotency_keys.c.task_id == task_id))
            conn.execute(tasks.delete().where(tasks.c.id == task_id))
        return to_record(row)

    def owns(self, task_id: str, attempt: int) -> bool:
        with self._db.read.connect() as conn:
            row = conn.execute(sa.select(tasks.c.id).where(fenced(task_id, attempt))).first()
        return row is not None

    def get(self, task_id: str, key_id: str | None = None) -> TaskRecord | None:
        with self._db.read.connect() as conn:
            if key_id is None:
                row = conn.execute(_TASK_BY_ID, {"task_id": task_id}).first()
            else:
                row = conn.execute(_OWN_TASK, {"task_id": task_id, "key_id": key_id}).first()
        return to_record(row) if row is not None else None

    def get_many(self, task_ids: Sequence[str]) -> dict[str, TaskRecord]:
        if not task_ids:
            return {}
        with self._db.read.connect() as conn:
            found = conn.execute(_TASKS_BY_IDS, {"ids": list(task_ids)}).all()
        return {record.id: record for record in map(to_record, found)}

    def claim(
        self,
        owner: str,
        lease_seconds: float,
        now: float,
        models: Sequence[str] | None = None,
    ) -> TaskRecord | None:
        # Fair across keys: among the oldest FAIR_WINDOW pending tasks, those of the keys
        # with the fewest renders running go first. The window bounds the work per claim
        # whatever the queue's length (one key has at most R2V_MAX_UNFINISHED_TASKS there).
        busy = sa.select(tasks.c.key_id, sa.func.count()).where(tasks.c.status == PROCESSING)
        if models is not None:
            busy = busy.where(tasks.c.model.in_(list(models)))
        window = (
            sa.select(tasks.c.id, tasks.c.key_id)
            .where(*_eligible(models))
            .order_by(tasks.c.created_at, tasks.c.id)
            .limit(FAIR_WINDOW)
        )
        with self._db.write.begin() as conn:
            if self._max_running_per_key is not None and self._db.dialect == "postgresql":
                # the cap is counted, then kept: one claimer at a time decides
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLAIM_LOCK})
            running = {str(k): int(n) for k, n in conn.execute(busy.group_by(tasks.c.key_id))}
            candidates = [(str(row.id), str(row.key_id)) for row in conn.execute(window)]
            for task_id in fair_order(candidates, running, self._max_running_per_key):
                statement = claiming(owner, lease_seconds, now, models, 1, only=task_id)
                row = conn.execute(statement).first()
                if row is not None:
                    return to_record(row)
        return None

    def _update(
        self, where: sa.ColumnElement[bool], *, finishes: str | None = None, **values: Any
    ) -> bool:
        with self._db.write.begin() as conn:
            result = conn.execute(tasks.update().where(where).values(**values))
            changed = result.rowcount > 0
            if changed and finishes is not None:
                enqueue_webhooks(conn, [finishes], values["updated_at"])
        return changed

    def release(self, task_id: str, attempt: int, now: float) -> bool:
        with self._db.write.begin() as conn:
            result = conn.execute(
                tasks.update()
                .where(fenced(task_id, attempt))
                .values(status=PENDING, lease_owner=None, lease_expires_at=None, updated_at=now)
            )
            if result.rowcount:
                self._notify(conn)
        return result.rowcount > 0

    def counts(self) -> dict[str, int]:
        query = sa.select(tasks.c.status, sa.func.count()).group_by(tasks.c.status)
        with self._db.read.connect() as conn:
            return {str(status): int(count) for status, count in conn.execute(query)}

    def ping(self) -> None:
        with self._db.read.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def _notify(self, conn: sa.Connection) -> None:
        # PostgreSQL wakes idle workers at commit; SQLite workers poll (and share a process)
        if self._db.dialect == "postgresql":
            conn.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": TASKS_CHANNEL})

    def heartbeat(self, task_id: str, attempt: int, lease_expires_at: float) -> bool:
        return self._update(fenced(task_id, attempt), lease_expires_at=lease_expires_at)

    def set_progress(
        self, task_id: str, attempt: int, progress: int, video_duration: int | None = None
    ) -> bool:
        values: dict[str, Any] = {
            # progress only rises, whatever order writes arrive in
            "progress": sa.case((tasks.c.progress < progress, progress), else_=tasks.c.progress)
        }
        if video_duration is not None:
            values["video_duration"] = video_duration
        return self._update(fenced(task_id, attempt), **values)

    def complete(
        self,
        task_id: str,
        attempt: int,
        *,
        result_key: str,
        video_duration: int,
        now: float,
        result_expires_at: float,
        size: tuple[int, int] | None = None,
        summary: str | None = None,
    ) -> bool:
        width, height = size or (None, None)
        return self._update(
            fenced(task_id, attempt),
            finishes=task_id,
            status=COMPLETED,
            progress=100,
            result_key=result_key,
            video_duration=video_duration,
            video_width=width,
            video_height=height,
            render_summary=summary,
            result_expires_at=result_expires_at,
            finished_at=now,
            updated_at=now,
            lease_owner=None,
            lease_expires_at=None,
        )

    def fail(
        self, task_id: str, attempt: int | None, *, code: str, message: str, now: float
    ) -> bool:
        if attempt is None:
            where = sa.and_(tasks.c.id == task_id, tasks.c.status.in_([PENDING, PROCESSING]))
        else:
            where = fenced(task_id, attempt)
        return self._update(
            where,
            finishes=task_id,
            status=FAILED,
            error_code=code,
            error_message=message,
            finished_at=now,
            updated_at=now,
            lease_owner=None,
            lease_expires_at=None,
        )

    def reap(self, now: float, max_attempts: int) -> ReapOutcome:
        expired = sa.and_(tasks.c.status == PROCESSING, tasks.c.lease_expires_at < now)
        with self._db.write.begin() as conn:
            failed = conn.execute(
                tasks.update()
                .where(expired, tasks.c.attempt >= max_attempts)
                .values(
                    status=FAILED,
                    error_code=TaskErrorCode.SERVICE_ERROR.value,
                    error_message=(
                        f"the worker rendering this task stopped {max_attempts} times "
                        "before finishing; the task was given up. Create it again; if it "
                        "keeps failing, try fewer or smaller references"
                    ),
                    finished_at=now,
                    updated_at=now,
                    lease_owner=None,
                    lease_expires_at=None,
                )
                .returning(tasks.c.id)
            ).scalars()
            failed_ids = tuple(failed)
            enqueue_webhooks(conn, failed_ids, now)
            requeued = conn.execute(
                tasks.update()
                .where(expired, tasks.c.attempt < max_attempts)
                .values(status=PENDING, updated_at=now, lease_owner=None, lease_expires_at=None)
                .returning(tasks.c.id)
            ).scalars()
            requeued_ids = tuple(requeued)
            if requeued_ids:
                self._notify(conn)
        return ReapOutcome(requeued=requeued_ids, failed=failed_ids)

    def expired_results(self, now: float, limit: int = 100) -> list[tuple[str, str]]:
        query = (
            sa.select(tasks.c.id, tasks.c.result_key)
            .where(tasks.c.result_expires_at < now, tasks.c.result_key.is_not(None))
            .order_by(tasks.c.result_expires_at)
            .limit(limit)
        )
        with self._db.read.connect() as conn:
            return [(row.id, row.result_key) for row in conn.execute(query)]

    def forget_result(self, task_id: str) -> None:
        self._update(tasks.c.id == task_id, result_key=None)

    def statuses(self, task_ids: Sequence[str]) -> dict[str, str]:
        if not task_ids:
            return {}
        query = sa.select(tasks.c.id, tasks.c.status).where(tasks.c.id.in_(list(task_ids)))
        with self._db.read.connect() as conn:
            return {row.id: row.status for row in conn.execute(query)}

    # files -----------------------------------------------------------------------------

    def insert_file(self, record: FileRecord, *, quota_bytes: int | None = None) -> None:
        with self._db.write.begin() as conn:
            if quota_bytes is not None:
                stored = self._stored_bytes(conn, record.key_id, record.created_at)
                if stored + record.bytes > quota_bytes:
                    raise PayloadTooLarge(
                        quota_message(stored, record.bytes, quota_bytes),
                        param="file",
                        code="upload_quota_exceeded",
                    )
            conn.execute(files.insert().values(**record.__dict__))

    def stored_bytes(self, key_id: str, now: float) -> int:
        with self._db.read.connect() as conn:
            return self._stored_bytes(conn, key_id, now)

    @staticmethod
    def _stored_bytes(conn: sa.Connection, key_id: str, now: float) -> int:
        query = sa.select(sa.func.coalesce(sa.func.sum(files.c.bytes), 0)).where(
            files.c.key_id == key_id, files.c.deleted_at.is_(None), files.c.expires_at >= now
        )
        return int(conn.execute(query).scalar_one())

    def take_upload_token(self, key_id: str, rate_per_minute: int, now: float) -> None:
        with self._db.write.begin() as conn:
            limits = KeyLimits(rate_per_minute=rate_per_minute, burst=rate_per_minute,
                               max_unfinished=0)  # fmt: skip
            self._take_token(conn, f"{key_id}/files", limits, now, what="uploads")

    def get_file(self, file_id: str, key_id: str | None = None) -> FileRecord | None:
        query = sa.select(files).where(files.c.id == file_id)
        if key_id is not None:
            query = query.where(files.c.key_id == key_id)
        with self._db.read.connect() as conn:
            row = conn.execute(query).first()
        return FileRecord(**row._mapping) if row is not None else None

    def expired_files(self, now: float, limit: int = 100) -> list[FileRecord]:
        query = (
            sa.select(files)
            .where(files.c.deleted_at.is_(None), files.c.expires_at < now)
            .order_by(files.c.expires_at)
            .limit(limit)
        )
        with self._db.read.connect() as conn:
            return [FileRecord(**row._mapping) for row in conn.execute(query)]

    def forget_file(self, file_id: str, now: float) -> None:
        with self._db.write.begin() as conn:
            conn.execute(files.update().where(files.c.id == file_id).values(deleted_at=now))
