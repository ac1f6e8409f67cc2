"""The task service: what the API does, in domain terms, with no HTTP in sight.

Create checks every rule that needs no download and stores a pending row; reading a task
translates the row to the wire object (the one place that happens) and signs a fresh link.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path

from r2v.errors import InvalidRequest, InvalidTaskId, LinkExpired, NotFound
from r2v.protocol import (
    AUTO_SEED,
    MAX_REFERENCES,
    CreateVideoRequest,
    TaskError,
    TaskInfo,
    TaskObject,
    TaskStatus,
    Usage,
    is_task_id,
    parse_mentions,
    uploaded_file_id,
)
from r2v.tasks.files import FileService
from r2v.tasks.links import LinkSigner, result_path
from r2v.tasks.ports import BlobStore, TaskStore
from r2v.tasks.record import TaskRecord, new_task_id

Estimator = Callable[[CreateVideoRequest], int]
UrlCheck = Callable[[str], "str | None"]
"""Why a reference URL can be refused without fetching it (say, a private address), or None."""


def check_cross_field_rules(request: CreateVideoRequest) -> None:
    """Rules that span fields: totals, audio needing a visual, mentions that point nowhere."""
    counts = {
        "image": len(request.image_urls),
        "video": len(request.video_urls),
        "audio": len(request.audio_urls),
    }
    total = sum(counts.values())
    if total > MAX_REFERENCES:
        raise InvalidRequest(
            f"at most {MAX_REFERENCES} references in total (images, videos and audio together); "
            f"got {total}",
            param="image_urls",
        )
    if counts["audio"] and not (counts["image"] or counts["video"]):
        raise InvalidRequest(
            "audio references need at least one image or video reference: add one to "
            "image_urls or video_urls, or remove audio_urls",
            param="audio_urls",
        )
    for mention in parse_mentions(request.prompt):
        have = counts[mention.kind]
        if not 1 <= mention.index <= have:
            raise InvalidRequest(
                f"the prompt mentions {mention.text} but the request has {have} "
                f"{mention.kind} reference{'s' if have != 1 else ''} in {mention.kind}_urls: "
                f"add the reference or fix the mention",
                param="prompt",
            )


def poll_after_ms(task: TaskObject) -> int | None:
    """How long a client should wait before asking again; None once the task is terminal."""
    if task.status.terminal:
        return None
    if task.status is TaskStatus.PENDING:
        return 2000
    remaining = task.task_info.estimated_time * (100 - task.progress) / 100
    return int(min(10.0, max(1.0, remaining / 4)) * 1000)


class TaskService:
    """Creates tasks and shows them to the key that owns them."""

    def __init__(
        self,
        store: TaskStore,
        blobs: BlobStore,
        signer: LinkSigner,
        estimate: Estimator,
        *,
        files: FileService | None = None,
        check_url: UrlCheck = lambda _url: None,
        on_created: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._files = files
        self._check_url = check_url
        self._store = store
        self._blobs = blobs
        self._signer = signer
        self._estimate = estimate
        self._on_created = on_created
        self._clock = clock

    def create(self, key_id: str, request: CreateVideoRequest) -> TaskObject:
        """Validate what needs no download, store a pending task and wake a worker."""
        check_cross_field_rules(request)
        self._check_references(key_id, request)
        now = self._clock()
        seed = request.seed if request.seed != AUTO_SEED else secrets.randbelow(2**31)
        record = TaskRecord(
            id=new_task_id(now),
            key_id=key_id,
            model=request.model,
            status=TaskStatus.PENDING,
            progress=0,
            request=request,
            seed=seed,
            video_duration=request.duration,
            estimated_time=self._estimate(request),
            created_at=now,
            updated_at=now,
        )
        self._store.insert(record)
        self._on_created()
        return self.to_wire(record, base_url="")

    def _check_references(self, key_id: str, request: CreateVideoRequest) -> None:
        """Refuse references that need no download to judge: private literal addresses,
        and uploads that are not this key's, have expired, or are of the wrong kind."""
        for kind, urls in (
            ("image", request.image_urls),
            ("video", request.video_urls),
            ("audio", request.audio_urls),
        ):
            for position, url in enumerate(urls):
                file_id = uploaded_file_id(url)
                if file_id is not None and self._files is not None:
                    problem = self._files.problem(key_id, file_id, kind)
                else:
                    problem = self._check_url(url)
                if problem:
                    raise InvalidRequest(
                        f"{kind}_urls[{position}]: {problem}", param=f"{kind}_urls"
                    )

    def get(self, key_id: str, task_id: str, base_url: str) -> TaskObject:
        """The caller's task, with a freshly signed link when completed."""
        return self.to_wire(self._own_task(key_id, task_id), base_url)

    def _own_task(self, key_id: str, task_id: str) -> TaskRecord:
        if not is_task_id(task_id):
            raise InvalidTaskId(
                "task ids look like task-unified-<unix seconds>-<8 lowercase letters or digits>",
                param="task_id",
            )
        record = self._store.get(task_id, key_id)
        if record is None:
            raise NotFound(f"no task {task_id} for this API key", code="task_not_found")
        return record

    def result_file(self, task_id: str, expires: str | None, signature: str | None) -> Path:
        """The video behind a signed result link, once the link is checked."""
        self._signer.verify(result_path(task_id), expires, signature, self._clock())
        record = self._store.get(task_id)
        if record is None or record.status is not TaskStatus.COMPLETED:
            raise NotFound("no video for this link", code="result_not_found")
        path = self._blobs.local_path(record.result_key) if record.result_key else None
        if path is None:
            raise LinkExpired(
                "this video was deleted after the retention period: create the task again",
                code="result_deleted",
            )
        return path

    def to_wire(self, record: TaskRecord, base_url: str) -> TaskObject:
        """The one translation from task record to the wire task object."""
        results = None
        if record.status is TaskStatus.COMPLETED:
            link = self._signer.sign(result_path(record.id), self._clock())
            results = [base_url.rstrip("/") + link]
        error = None
        if record.status is TaskStatus.FAILED:
            error = TaskError(
                code=record.error_code or "unknown_error",
                message=record.error_message or "the task failed",
            )
        return TaskObject(
            id=record.id,
            created=int(record.created_at),
            model=record.model,
            status=record.status,
            progress=100 if record.status is TaskStatus.COMPLETED else record.progress,
            results=results,
            error=error,
            task_info=TaskInfo(
                can_cancel=not record.terminal,
                estimated_time=record.estimated_time,
                video_duration=record.video_duration,
                seed=record.seed,
            ),
            usage=Usage(credits_reserved=record.credits_reserved),
        )
