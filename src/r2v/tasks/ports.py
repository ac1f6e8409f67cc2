"""The ports the task service and workers need, implemented by the adapters in db/ and storage/.

The task row is the queue: `claim`, `heartbeat`, `set_progress`, `complete` and `fail` are
the whole protocol between workers, and every write of a worker is fenced by its attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from r2v.tasks.record import TaskRecord


@dataclass(frozen=True)
class ApiKey:
    """An API key as stored: never the key itself, only its hash and a short prefix."""

    id: str
    name: str
    prefix: str
    key_hash: str
    created_at: float
    revoked_at: float | None = None
    webhook_secret: str | None = None
    """Signs this key's webhooks (`whsec_…`, Standard Webhooks); shown once, at creation."""
    rate_per_minute: int | None = None
    """Task creations a minute this key may make; None: the server's default."""
    max_unfinished: int | None = None
    """Pending and processing tasks this key may have at once; None: the server's default."""


@dataclass(frozen=True)
class KeyLimits:
    """The limits a create is checked against, the key's own or the server's defaults."""

    rate_per_minute: int
    burst: int
    max_unfinished: int


@dataclass(frozen=True)
class Idempotency:
    """A create's `Idempotency-Key` and the hash of its (normalized) body."""

    key: str
    body_hash: str
    window_seconds: float = 86400.0


@dataclass(frozen=True)
class Delivery:
    """One webhook to deliver: the finished task, where, and how many tries so far."""

    id: str
    task_id: str
    key_id: str
    url: str
    status: str
    attempts: int
    next_attempt_at: float
    created_at: float
    last_status_code: int | None = None
    last_error: str | None = None
    finished_at: float | None = None


@dataclass(frozen=True)
class DeliveryAttempt:
    delivery_id: str
    attempt: int
    at: float
    status_code: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True)
class FileRecord:
    """A reference uploaded with `POST /v1/files`, kept until `expires_at`."""

    id: str
    key_id: str
    kind: str
    format: str
    bytes: int
    filename: str | None
    created_at: float
    expires_at: float
    deleted_at: float | None = None

    @property
    def blob_key(self) -> str:
        return f"files/{self.id}"


@dataclass(frozen=True)
class ReapOutcome:
    """What one pass of the reaper did."""

    requeued: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskQuery:
    """Which of a key's tasks a filtered listing wants; a field left None does not filter."""

    status: str | None = None
    """The status a client sees (an upstream task waiting upstream is `pending`)."""
    cancelled: bool | None = None
    """Failed by a cancel (True), or by anything else (False)."""
    has_result: bool | None = None
    """Whether a completed task's video is still kept (False: deleted by retention)."""
    ids: tuple[str, ...] | None = None
    models: tuple[str, ...] | None = None


class TaskStore(Protocol):
    """Durable task rows, doubling as the work queue."""

    def create(
        self,
        record: TaskRecord,
        *,
        limits: KeyLimits,
        idempotency: Idempotency | None,
        now: float,
    ) -> str:
        """Store a new pending task within the key's limits, in one transaction.

        Returns the id of the task that answers the request: the new one, or, for an
        `Idempotency-Key` seen within its window with the same body, the earlier one.
        Raises `Conflict` for a seen key with another body and `RateLimited` when the key's
        request rate or its count of unfinished tasks is at its limit.
        """
        ...

    def list_tasks(
        self,
        key_id: str,
        limit: int,
        before: TaskRecord | None,
        status: str | None,
        *,
        oldest_first: bool = False,
    ) -> list[TaskRecord]:
        """The key's tasks, newest first (or oldest first), after `before` in that order."""
        ...

    def find_tasks(
        self, key_id: str, query: TaskQuery, offset: int, limit: int
    ) -> tuple[int, list[TaskRecord]]:
        """How many of the key's tasks match `query`, and a page of them, newest first."""
        ...

    def delete_task(self, task_id: str, key_id: str) -> TaskRecord | None:
        """Delete the key's task with its webhooks and idempotency keys; the row as it
        was, or None when the key has no such task. Its blobs are the caller's to delete."""
        ...

    def owns(self, task_id: str, attempt: int) -> bool:
        """Whether `attempt` is still the processing attempt of the task."""
        ...

    def get(self, task_id: str, key_id: str | None = None) -> TaskRecord | None:
        """The task, or None when unknown or (with `key_id`) owned by another key."""
        ...

    def get_many(self, task_ids: Sequence[str]) -> dict[str, TaskRecord]:
        """The known tasks among `task_ids`, by id, in one read."""
        ...

    def claim(
        self,
        owner: str,
        lease_seconds: float,
        now: float,
        models: Sequence[str] | None = None,
    ) -> TaskRecord | None:
        """Atomically take the next pending task (of `models`, when given): processing,
        attempt + 1, leased to owner. The next is the oldest of the keys with the fewest
        renders running (and below the store's per-key cap, if any): fair across keys."""
        ...

    def heartbeat(self, task_id: str, attempt: int, lease_expires_at: float) -> bool:
        """Extend the lease; False when the attempt is no longer the task's current one."""
        ...

    def set_progress(
        self, task_id: str, attempt: int, progress: int, video_duration: int | None = None
    ) -> bool:
        """Raise progress (never lower it); False when the attempt is stale."""
        ...

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
        """Mark completed with its stored result (and the video's (width, height), and what
        the engine made of the request as JSON); False when the attempt is stale."""
        ...

    def fail(
        self, task_id: str, attempt: int | None, *, code: str, message: str, now: float
    ) -> bool:
        """Mark failed. `attempt=None` fails whatever attempt is current, if not terminal."""
        ...

    def release(self, task_id: str, attempt: int, now: float) -> bool:
        """Hand a processing task back to the queue (a worker shutting down); fenced."""
        ...

    def counts(self) -> dict[str, int]:
        """How many tasks there are in each status."""
        ...

    def ping(self) -> None:
        """Raise when the database cannot be reached (for readiness)."""
        ...

    def reap(self, now: float, max_attempts: int) -> ReapOutcome:
        """Requeue processing tasks whose lease expired; fail those out of attempts."""
        ...

    def expired_results(self, now: float, limit: int = 100) -> list[tuple[str, str]]:
        """(task id, result key) of completed tasks whose result is past retention."""
        ...

    def forget_result(self, task_id: str) -> None:
        """Record that a task's result was deleted by retention."""
        ...

    def statuses(self, task_ids: Sequence[str]) -> dict[str, str]:
        """The status of each known id among `task_ids`."""
        ...


class UpstreamStore(Protocol):
    """The rows of tasks served by an upstream, as the gateway that follows them sees them.

    A gateway holds many tasks at once under one owner name: it claims them in batches and
    renews all their leases in one write. Every write about one task is fenced by its attempt.
    """

    def claim_upstream(
        self, owner: str, lease_seconds: float, now: float, models: Sequence[str], limit: int
    ) -> list[TaskRecord]:
        """Atomically take up to `limit` of the oldest pending tasks of `models`: processing,
        attempt + 1, leased to owner; a task new to the upstream becomes `preparing`."""
        ...

    def held(self, owner: str) -> dict[str, int]:
        """The processing tasks leased to `owner`, each with its attempt."""
        ...

    def renew(self, owner: str, lease_expires_at: float) -> dict[str, int]:
        """Extend the lease of every processing task leased to `owner`; those tasks."""
        ...

    def set_upstream(
        self,
        task_id: str,
        attempt: int,
        *,
        state: str | None = None,
        target: str | None = None,
        ref: str | None = None,
        since: float | None = None,
        usage: str | None = None,
        seed: int | None = None,
        progress: int | None = None,
    ) -> bool:
        """Record where the task stands upstream; None leaves a field as it is, `since` is
        kept once set and progress only rises. False when the attempt is stale."""
        ...

    def hint(self, task_id: str) -> None:
        """Tell every process that the upstream has news of this task (a PostgreSQL
        NOTIFY; on SQLite nothing: the process that hears the news follows the task)."""
        ...


class KeyStore(Protocol):
    """Stored API keys."""

    def insert_key(self, key: ApiKey) -> None:
        """Store a new key."""
        ...

    def find_key(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, revoked or not."""
        ...

    def list_keys(self) -> list[ApiKey]:
        """Every key, oldest first."""
        ...

    def revoke_key(self, key_id: str, now: float) -> bool:
        """Revoke by id (or name); False when no active key matches."""
        ...

    def revision(self) -> float:
        """A value that changes whenever a key is revoked (the latest revocation's time)."""
        ...

    def get_key(self, key_id: str) -> ApiKey | None:
        """The key with this id, revoked or not."""
        ...

    def update_key_limits(
        self, key_id: str, rate_per_minute: int | None, max_unfinished: int | None
    ) -> bool:
        """Set a key's own limits (None leaves one as it is); False when no such key."""
        ...


class WebhookStore(Protocol):
    """The outbox of webhooks: rows written with a task's terminal state, sent after."""

    def claim_deliveries(self, now: float, limit: int, lease_seconds: float) -> list[Delivery]:
        """Take due deliveries, pushing their next attempt `lease_seconds` out meanwhile."""
        ...

    def postpone(self, delivery_id: str, next_attempt_at: float) -> None:
        """Put a claimed delivery back until `next_attempt_at`, counting no try."""
        ...

    def record_attempt(
        self,
        attempt: DeliveryAttempt,
        *,
        delivered: bool,
        next_attempt_at: float | None,
    ) -> None:
        """Record one try; `next_attempt_at` None with `delivered` False gives up."""
        ...

    def deliveries(self, task_id: str) -> list[Delivery]:
        """The deliveries of one task."""
        ...

    def attempts(self, delivery_id: str) -> list[DeliveryAttempt]:
        """Every try of one delivery, in order."""
        ...


class FileStore(Protocol):
    """Records of uploaded references."""

    def insert_file(self, record: FileRecord, *, quota_bytes: int | None = None) -> None:
        """Store a new upload's record; `PayloadTooLarge` when it would take the key's
        unexpired uploads over `quota_bytes`."""
        ...

    def stored_bytes(self, key_id: str, now: float) -> int:
        """Bytes of the key's uploads that have not expired."""
        ...

    def take_upload_token(self, key_id: str, rate_per_minute: int, now: float) -> None:
        """Count one upload against the key's rate; `RateLimited` when it is spent."""
        ...

    def get_file(self, file_id: str, key_id: str | None = None) -> FileRecord | None:
        """The upload, or None when unknown or (with `key_id`) owned by another key."""
        ...

    def expired_files(self, now: float, limit: int = 100) -> list[FileRecord]:
        """Uploads past their expiry that are not yet deleted."""
        ...

    def forget_file(self, file_id: str, now: float) -> None:
        """Record that an upload's bytes were deleted."""
        ...


@dataclass(frozen=True)
class BlobLocation:
    """Where a stored object can be read: a local file, or a short-lived URL."""

    path: Path | None = None
    url: str | None = None


class BlobStore(Protocol):
    """Where finished videos and uploads are kept."""

    def put(self, key: str, source: Path) -> None:
        """Store the file at `source` under `key`, taking ownership of it."""
        ...

    def locate(self, key: str) -> BlobLocation | None:
        """Where to read the object from, or None when it does not exist."""
        ...

    def download(self, key: str, dest: Path) -> bool:
        """Copy the object to the local file `dest`; False when it does not exist."""
        ...

    def delete(self, key: str) -> None:
        """Delete the object; deleting a missing key is not an error."""
        ...

    def share(self, key: str, seconds: int) -> str | None:
        """A URL anyone may read the object at for `seconds` (a presigned URL), or None when
        the store cannot give one and the server itself must serve the object."""
        ...

    def check(self) -> None:
        """Raise when the store cannot be used right now (for readiness)."""
        ...
