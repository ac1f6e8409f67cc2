"""The task service: what the API does, in domain terms, with no HTTP in sight.

Create checks every rule that needs no download and stores a pending row; reading a task
translates the row to the wire object (the one place that happens) and signs a fresh link.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import tempfile
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from r2v.errors import (
    Conflict,
    InvalidRequest,
    InvalidTaskId,
    NotFound,
    RequestError,
)
from r2v.grammar import find_mentions
from r2v.protocol import (
    AUTO_SEED,
    MAX_REFERENCES,
    OUTPUT_SIZES,
    CreateVideoRequest,
    Storyboard,
    StoryboardShot,
    StoryboardSound,
    TaskError,
    TaskErrorCode,
    TaskInfo,
    TaskList,
    TaskObject,
    TaskStatus,
    Usage,
    is_asset_url,
    is_task_id,
    uploaded_file_id,
)
from r2v.tasks.files import FileService
from r2v.tasks.links import LinkSigner, last_frame_path, result_path
from r2v.tasks.ports import (
    ApiKey,
    BlobLocation,
    BlobStore,
    Idempotency,
    KeyLimits,
    TaskQuery,
    TaskStore,
)
from r2v.tasks.record import TaskRecord, new_task_id
from r2v.tasks.stills import Still, Stills, blob_keys, video_deleted

IDEMPOTENCY_WINDOW_SECONDS = 86400.0

log = logging.getLogger("r2v.tasks")

Estimator = Callable[[CreateVideoRequest], int]
LimitsOf = Callable[[ApiKey], KeyLimits]
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
    for field, index in (
        ("first_frame_image", request.first_frame_image),
        ("last_frame_image", request.last_frame_image),
    ):
        if index is not None and index > counts["image"]:
            raise InvalidRequest(
                f"{field} is {index} but the request has {counts['image']} image "
                f"reference{'s' if counts['image'] != 1 else ''}: name an image of image_urls "
                "(1-based)",
                param=field,
            )
    for mention in find_mentions(request.prompt):
        have = counts[mention.kind]
        if not 1 <= mention.index <= have:
            raise InvalidRequest(
                f"the prompt mentions {mention.text} but the request has {have} "
                f"{mention.kind} reference{'s' if have != 1 else ''} in {mention.kind}_urls: "
                f"add the reference or fix the mention",
                param="prompt",
            )


def _invalid_task_id() -> InvalidTaskId:
    return InvalidTaskId(
        "task ids look like task-unified-<unix seconds>-<8 lowercase letters or digits>",
        param="task_id",
    )


def _task_not_found(task_id: str) -> NotFound:
    return NotFound(f"no task {task_id} for this API key", code="task_not_found")


@dataclass(frozen=True)
class TaskView:
    """A task as every door shows it: its record and its freshly signed links."""

    record: TaskRecord
    video_url: str | None = None
    """The signed link of the video, once completed (and while it is kept)."""
    last_frame_url: str | None = None
    """The signed link of the last frame's PNG, when the request asked for one."""

    @property
    def size(self) -> tuple[int, int] | None:
        """(width, height) of the video: as produced once done, else as planned (None for
        an `adaptive` ratio not yet decided)."""
        record = self.record
        if record.video_width and record.video_height:
            return record.video_width, record.video_height
        request = record.request
        if request.aspect_ratio == "adaptive":
            return None
        return OUTPUT_SIZES[request.resolution][request.aspect_ratio]


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
        limits_of: LimitsOf,
        files: FileService | None = None,
        check_url: UrlCheck = lambda _url: None,
        check_callback: UrlCheck = lambda _url: None,
        on_created: Callable[[], None] = lambda: None,
        asset_models: Collection[str] = (),
        on_upstream_news: Callable[[str], None] = lambda _task_id: None,
        stills: Stills | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._stills = stills or Stills(blobs, Path(tempfile.gettempdir()))
        self._asset_models = frozenset(asset_models)
        self._on_upstream_news = on_upstream_news
        self._limits_of = limits_of
        self._files = files
        self._check_url = check_url
        self._check_callback = check_callback
        self._store = store
        self._blobs = blobs
        self._signer = signer
        self._estimate = estimate
        self._on_created = on_created
        self._clock = clock

    def create(
        self,
        key: ApiKey,
        request: CreateVideoRequest,
        *,
        idempotency_key: str | None = None,
        base_url: str = "",
    ) -> TaskObject:
        """Validate what needs no download, store a pending task and wake a worker.

        With an `idempotency_key` seen in the last 24 hours for the same body, the task
        created then is answered instead; with another body it is a `Conflict`.
        """
        record = self.submit(key, request, idempotency_key=idempotency_key, base_url=base_url)
        return self.to_wire(record, base_url)

    def submit(
        self,
        key: ApiKey,
        request: CreateVideoRequest,
        *,
        idempotency_key: str | None = None,
        idempotency_window: float = IDEMPOTENCY_WINDOW_SECONDS,
        base_url: str = "",
        remixed_from: str | None = None,
    ) -> TaskRecord:
        """`create` for every door: the stored task (the earlier one, for a repeated
        `idempotency_key` within `idempotency_window` seconds)."""
        check_cross_field_rules(request)
        self._check_references(key.id, request)
        self._check_assets(request)
        idempotency = None
        if idempotency_key is not None:
            if not 1 <= len(idempotency_key) <= 255 or not idempotency_key.isprintable():
                raise InvalidRequest(
                    "Idempotency-Key must be 1-255 printable characters",
                    param="Idempotency-Key",
                )
            digest = hashlib.sha256(request.model_dump_json().encode()).hexdigest()
            idempotency = Idempotency(idempotency_key, digest, idempotency_window)
        now = self._clock()
        seed = request.seed if request.seed != AUTO_SEED else secrets.randbelow(2**31)
        record = TaskRecord(
            id=new_task_id(now),
            key_id=key.id,
            model=request.model,
            status=TaskStatus.PENDING,
            progress=0,
            request_json=request.model_dump_json(),
            seed=seed,
            video_duration=request.duration,
            estimated_time=self._estimate(request),
            created_at=now,
            updated_at=now,
            callback_url=request.callback_url,
            base_url=base_url or None,
            remixed_from=remixed_from,
        )
        task_id = self._store.create(
            record, limits=self._limits_of(key), idempotency=idempotency, now=now
        )
        if task_id == record.id:
            try:
                self._on_created()
            except Exception:  # the task is stored: idle workers find it on their next look
                log.exception("task %s: could not wake a worker", record.id)
            return record
        return self.record(key.id, task_id)

    def remix(self, key: ApiKey, task_id: str, prompt: str, base_url: str) -> TaskRecord:
        """A new task with an earlier one's references and settings and a new prompt."""
        original = self.record(key.id, task_id).request
        changed = original.model_dump(exclude_defaults=True) | {"prompt": prompt}
        return self.submit(
            key,
            CreateVideoRequest.model_validate(changed),
            base_url=base_url,
            remixed_from=task_id,
        )

    def page(
        self,
        key_id: str,
        base_url: str,
        limit: int = 20,
        after: str | None = None,
        status: str | None = None,
    ) -> TaskList:
        """The key's tasks, newest first; `after` is the last id of the previous page."""
        records, has_more = self.records_page(key_id, limit, after, status)
        page = [self.to_wire(record, base_url) for record in records]
        return TaskList(
            data=page,
            has_more=has_more,
            first_id=page[0].id if page else None,
            last_id=page[-1].id if page else None,
        )

    def records_page(
        self,
        key_id: str,
        limit: int = 20,
        after: str | None = None,
        status: str | None = None,
        *,
        oldest_first: bool = False,
    ) -> tuple[list[TaskRecord], bool]:
        """A page of the key's tasks (newest first unless `oldest_first`), the ones after
        the task `after` in that order, and whether more follow."""
        if not 1 <= limit <= 100:
            raise InvalidRequest("limit must be from 1 to 100", param="limit")
        if status is not None and status not in {s.value for s in TaskStatus}:
            raise InvalidRequest(
                "status must be pending, processing, completed or failed", param="status"
            )
        before = None
        if after is not None:
            before = self._store.get(after, key_id) if is_task_id(after) else None
            if before is None:
                raise InvalidRequest(f"after: no task {after} for this API key", param="after")
        found = self._store.list_tasks(key_id, limit + 1, before, status, oldest_first=oldest_first)
        return found[:limit], len(found) > limit

    def find(
        self, key_id: str, query: TaskQuery, offset: int, limit: int, base_url: str
    ) -> tuple[int, list[TaskView]]:
        """How many of the key's tasks match, and a page of them as views, newest first."""
        total, records = self._store.find_tasks(key_id, query, offset, limit)
        return total, [self.view(record, base_url) for record in records]

    def cancel(self, key_id: str, task_id: str, base_url: str) -> TaskObject:
        """Cancel a pending or processing task: it ends `failed` with `request_cancelled`.

        A render in progress notices within a second and stops; its worker writes nothing
        more, since the task is no longer its to write.
        """
        if not self._cancel_unfinished(self._own_task(key_id, task_id)):
            status = self._own_task(key_id, task_id).status.value
            raise Conflict(
                f"task {task_id} is already {status}: only pending or processing "
                "tasks can be cancelled",
                code="task_not_cancellable",
            )
        return self.get(key_id, task_id, base_url)

    def _cancel_unfinished(self, record: TaskRecord) -> bool:
        """End a pending or processing task `failed` / `request_cancelled`; False when it
        had already ended."""
        return not record.terminal and self._store.fail(
            record.id,
            None,
            code=TaskErrorCode.REQUEST_CANCELLED.value,
            message="the task was cancelled by a DELETE request",
            now=self._clock(),
        )

    def delete(self, key_id: str, task_id: str) -> None:
        """Cancel the task if it is unfinished, then delete it with its video and pictures:
        afterwards its id is unknown through every door."""
        self._cancel_unfinished(self.record(key_id, task_id))
        if self._store.delete_task(task_id, key_id) is None:
            raise _task_not_found(task_id)
        # a worker still rendering it cannot complete it now, and deletes what it stored
        for key in blob_keys(task_id):
            self._blobs.delete(key)

    def still(self, key_id: str, task_id: str, still: Still) -> tuple[BlobLocation, str]:
        """A picture of the key's completed task (made on first request), and its type."""
        return self._stills.locate(self.record(key_id, task_id), still)

    def shared_last_frame(
        self, task_id: str, expires: str | None, signature: str | None
    ) -> tuple[BlobLocation, str]:
        """The last frame behind a signed link, once the link is checked."""
        self._signer.verify(last_frame_path(task_id), expires, signature, self._clock())
        record = self._store.get(task_id)
        if record is None:
            raise NotFound("no picture for this link", code="result_not_found")
        return self._stills.locate(record, "last_frame")

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
                if is_asset_url(url):
                    continue  # judged by `_check_assets`
                if file_id is not None and self._files is not None:
                    problem = self._files.problem(key_id, file_id, kind)
                else:
                    problem = self._check_url(url)
                if problem:
                    raise InvalidRequest(
                        f"{kind}_urls[{position}]: {problem}", param=f"{kind}_urls"
                    )
        if request.callback_url is not None:
            problem = self._check_callback(request.callback_url)
            if problem:
                raise InvalidRequest(f"callback_url: {problem}", param="callback_url")

    def _check_assets(self, request: CreateVideoRequest) -> None:
        """`asset://` references only go to upstreams: no renderer can read them."""
        if request.model in self._asset_models:
            return
        for kind, urls in (
            ("image", request.image_urls),
            ("video", request.video_urls),
            ("audio", request.audio_urls),
        ):
            for position, url in enumerate(urls):
                if is_asset_url(url):
                    raise InvalidRequest(
                        f"{kind}_urls[{position}]: asset:// references name items of Ark's "
                        f"asset library, which only a model served by an Ark upstream can "
                        f"use; {request.model} is rendered here: send an http(s) URL",
                        param=f"{kind}_urls",
                    )

    def upstream_callback(self, token: str) -> None:
        """An upstream called back about a task: have the task polled now.

        The token binds the call to one task; the call's body is never read (it is only a
        hint: what the task became is asked of the upstream itself). `NotFound` for a
        token that is not one of ours.
        """
        task_id = self._signer.task_of_callback(token)
        if task_id is None:
            raise NotFound("no such callback", code="not_found")
        self._on_upstream_news(task_id)

    def get(self, key_id: str, task_id: str, base_url: str) -> TaskObject:
        """The caller's task, with a freshly signed link when completed."""
        return self.to_wire(self._own_task(key_id, task_id), base_url)

    def record(self, key_id: str, task_id: str) -> TaskRecord:
        """The caller's task as stored (`InvalidTaskId`, or `NotFound` for another key's)."""
        return self._own_task(key_id, task_id)

    def view(self, record: TaskRecord, base_url: str) -> TaskView:
        """The task with its freshly signed links, for the doors that present it their way."""
        if record.status is not TaskStatus.COMPLETED or record.result_key is None:
            return TaskView(record)
        now = self._clock()
        base = base_url.rstrip("/")
        last_frame = None
        if record.request.return_last_frame:
            last_frame = base + self._signer.sign(last_frame_path(record.id), now)
        return TaskView(record, base + self._signer.sign(result_path(record.id), now), last_frame)

    def get_many(self, wanted: Sequence[tuple[str, str, str]]) -> list[TaskObject | RequestError]:
        """`get` for many (key id, task id, base URL) at once, in one read of the store.

        Each answer is the task object, or the error `get` would have raised for it.
        """
        well_formed = [task_id for _key, task_id, _base in wanted if is_task_id(task_id)]
        records = self._store.get_many(sorted(set(well_formed)))
        answers: list[TaskObject | RequestError] = []
        for key_id, task_id, base_url in wanted:
            record = records.get(task_id)
            if not is_task_id(task_id):
                answers.append(_invalid_task_id())
            elif record is None or record.key_id != key_id:
                answers.append(_task_not_found(task_id))
            else:
                answers.append(self.to_wire(record, base_url))
        return answers

    def task_for_webhook(self, task_id: str) -> TaskObject:
        """The task as its webhook carries it, linked at the URL it was created through."""
        record = self._store.get(task_id)
        if record is None:
            raise NotFound(f"no task {task_id}", code="task_not_found")
        return self.to_wire(record, record.base_url or "")

    def _own_task(self, key_id: str, task_id: str) -> TaskRecord:
        if not is_task_id(task_id):
            raise _invalid_task_id()
        record = self._store.get(task_id, key_id)
        if record is None:
            raise _task_not_found(task_id)
        return record

    def result_location(
        self, task_id: str, expires: str | None, signature: str | None
    ) -> BlobLocation:
        """Where the video behind a signed result link is, once the link is checked."""
        self._signer.verify(result_path(task_id), expires, signature, self._clock())
        record = self._store.get(task_id)
        if record is None or record.status is not TaskStatus.COMPLETED:
            raise NotFound("no video for this link", code="result_not_found")
        return self.result_location_of(record)

    def result_location_of(self, record: TaskRecord) -> BlobLocation:
        """Where a completed task's video is (`LinkExpired` once retention deleted it)."""
        found = self._blobs.locate(record.result_key) if record.result_key else None
        if found is None:
            raise video_deleted()
        return found

    def to_wire(self, record: TaskRecord, base_url: str) -> TaskObject:
        """The one translation from task record to the wire task object."""
        results = None
        if record.status is TaskStatus.COMPLETED:
            link = self._signer.sign(result_path(record.id), self._clock())
            results = [base_url.rstrip("/") + link]
        error = None
        if record.status is TaskStatus.FAILED:
            error = TaskError.model_construct(
                code=record.error_code or "unknown_error",
                message=record.error_message or "the task failed",
            )
        # model_construct: every value comes from a stored, validated task (and every
        # poll builds one, so validating again would cost the hot path for nothing)
        upstream_usage = json.loads(record.upstream_usage) if record.upstream_usage else None
        storyboard, warnings = _render_summary(record.render_summary)
        return TaskObject.model_construct(
            id=record.id,
            created=int(record.created_at),
            model=record.model,
            status=record.wire_status,
            progress=100 if record.status is TaskStatus.COMPLETED else record.progress,
            results=results,
            error=error,
            task_info=TaskInfo.model_construct(
                can_cancel=not record.terminal,
                estimated_time=record.estimated_time,
                video_duration=record.video_duration,
                seed=record.seed,
                storyboard=storyboard,
                warnings=warnings,
            ),
            usage=Usage.model_construct(
                billing_rule="per_second",
                credits_reserved=record.credits_reserved,
                user_group="default",
                upstream=upstream_usage,
            ),
        )


def _render_summary(stored: str | None) -> tuple[Storyboard | None, list[str] | None]:
    """The wire's storyboard and warnings from a completed task's stored JSON (what
    `RenderSummary.to_json` wrote); (None, None) when the engine reported none."""
    if not stored:
        return None, None
    summary = json.loads(stored)
    storyboard = Storyboard.model_construct(
        shots=[StoryboardShot.model_construct(**shot) for shot in summary.get("shots", ())],
        sounds=[StoryboardSound.model_construct(**sound) for sound in summary.get("sounds", ())],
    )
    return storyboard, list(summary.get("warnings", ())) or None
