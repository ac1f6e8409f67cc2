"""The SQL adapter of the task and key stores: the task row is the queue.

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
from r2v.db.schema import api_keys, files, tasks
from r2v.protocol import CreateVideoRequest, TaskErrorCode, TaskStatus
from r2v.tasks.ports import ApiKey, FileRecord, ReapOutcome
from r2v.tasks.record import TaskRecord

PENDING = TaskStatus.PENDING.value
PROCESSING = TaskStatus.PROCESSING.value
COMPLETED = TaskStatus.COMPLETED.value
FAILED = TaskStatus.FAILED.value


def _to_record(row: Any) -> TaskRecord:
    values = dict(row._mapping)
    values["status"] = TaskStatus(values["status"])
    values["request"] = CreateVideoRequest.model_validate_json(values["request"])
    return TaskRecord(**values)


def _to_row(record: TaskRecord) -> dict[str, Any]:
    return {
        column.name: getattr(record, column.name)
        for column in tasks.columns
        if column.name not in ("status", "request")
    } | {
        "status": record.status.value,
        "request": record.request.model_dump_json(),
    }


def _fenced(task_id: str, attempt: int) -> sa.ColumnElement[bool]:
    # Only the holder of the current attempt of a processing task may write to it.
    return sa.and_(tasks.c.id == task_id, tasks.c.attempt == attempt, tasks.c.status == PROCESSING)


class SqlStore:
    """`TaskStore`, `KeyStore` and `FileStore` over SQLAlchemy Core."""

    def __init__(self, database: Database) -> None:
        self._db = database

    # tasks -----------------------------------------------------------------------------

    def insert(self, record: TaskRecord) -> None:
        with self._db.write.begin() as conn:
            conn.execute(tasks.insert().values(**_to_row(record)))

    def get(self, task_id: str, key_id: str | None = None) -> TaskRecord | None:
        query = sa.select(tasks).where(tasks.c.id == task_id)
        if key_id is not None:
            query = query.where(tasks.c.key_id == key_id)
        with self._db.read.connect() as conn:
            row = conn.execute(query).first()
        return _to_record(row) if row is not None else None

    def claim(self, owner: str, lease_seconds: float, now: float) -> TaskRecord | None:
        oldest_pending = (
            sa.select(tasks.c.id)
            .where(tasks.c.status == PENDING)
            .order_by(tasks.c.created_at, tasks.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        statement = (
            tasks.update()
            .where(tasks.c.id == oldest_pending, tasks.c.status == PENDING)
            .values(
                status=PROCESSING,
                attempt=tasks.c.attempt + 1,
                lease_owner=owner,
                lease_expires_at=now + lease_seconds,
                updated_at=now,
            )
            .returning(*tasks.columns)
        )
        with self._db.write.begin() as conn:
            row = conn.execute(statement).first()
        return _to_record(row) if row is not None else None

    def _update(self, where: sa.ColumnElement[bool], **values: Any) -> bool:
        with self._db.write.begin() as conn:
            result = conn.execute(tasks.update().where(where).values(**values))
        return result.rowcount > 0

    def heartbeat(self, task_id: str, attempt: int, lease_expires_at: float) -> bool:
        return self._update(_fenced(task_id, attempt), lease_expires_at=lease_expires_at)

    def set_progress(
        self, task_id: str, attempt: int, progress: int, video_duration: int | None = None
    ) -> bool:
        values: dict[str, Any] = {
            # progress only rises, whatever order writes arrive in
            "progress": sa.case((tasks.c.progress < progress, progress), else_=tasks.c.progress)
        }
        if video_duration is not None:
            values["video_duration"] = video_duration
        return self._update(_fenced(task_id, attempt), **values)

    def complete(
        self,
        task_id: str,
        attempt: int,
        *,
        result_key: str,
        video_duration: int,
        now: float,
        result_expires_at: float,
    ) -> bool:
        return self._update(
            _fenced(task_id, attempt),
            status=COMPLETED,
            progress=100,
            result_key=result_key,
            video_duration=video_duration,
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
            where = _fenced(task_id, attempt)
        return self._update(
            where,
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
            requeued = conn.execute(
                tasks.update()
                .where(expired, tasks.c.attempt < max_attempts)
                .values(status=PENDING, updated_at=now, lease_owner=None, lease_expires_at=None)
                .returning(tasks.c.id)
            ).scalars()
            requeued_ids = tuple(requeued)
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

    # keys ------------------------------------------------------------------------------

    def insert_key(self, key: ApiKey) -> None:
        with self._db.write.begin() as conn:
            conn.execute(api_keys.insert().values(**key.__dict__))

    def find_key(self, key_hash: str) -> ApiKey | None:
        with self._db.read.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash)).first()
        return ApiKey(**row._mapping) if row is not None else None

    def list_keys(self) -> list[ApiKey]:
        with self._db.read.connect() as conn:
            rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at)).all()
        return [ApiKey(**row._mapping) for row in rows]

    def revoke_key(self, key_id: str, now: float) -> bool:
        with self._db.write.begin() as conn:
            result = conn.execute(
                api_keys.update()
                .where(
                    sa.or_(api_keys.c.id == key_id, api_keys.c.name == key_id),
                    api_keys.c.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            )
        return result.rowcount > 0

    # files -----------------------------------------------------------------------------

    def insert_file(self, record: FileRecord) -> None:
        with self._db.write.begin() as conn:
            conn.execute(files.insert().values(**record.__dict__))

    def get_file(self, file_id: str, key_id: str) -> FileRecord | None:
        query = sa.select(files).where(files.c.id == file_id, files.c.key_id == key_id)
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
