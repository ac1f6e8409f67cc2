"""Ark's door: `/api/v3/contents/generations/tasks`, for the official Ark SDKs unchanged.

`byteplussdkarkruntime` and `volcenginesdkarkruntime` create, read, list and delete tasks
here as they would on ModelArk. This module only translates: an Ark body becomes the
`/v1` create request and goes through the same `TaskService` (keys, limits, idempotency,
webhooks, engines), and a stored task is shown as Ark's task object. Its errors use Ark's
codes (see `api/errors.py`).

The SDKs send every optional field, set or not, as JSON `null` (absent here), and resend a
create after a 5xx or a timeout with nothing that tells the resend apart: a create whose
body matches one of the key's last `ark_retry_window_seconds` answers that task.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Query, Request, Response
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    model_validator,
)
from starlette.concurrency import run_in_threadpool

from r2v.api.docs import answers
from r2v.api.routes import Key, Services
from r2v.errors import Conflict, InvalidRequest
from r2v.protocol import (
    EXTENSION,
    FAST_MODEL,
    FPS,
    MAX_DURATION,
    MIN_DURATION,
    OUTPUT_SIZES,
    STANDARD_MODEL,
    CreateVideoRequest,
    TaskErrorCode,
    TaskStatus,
)
from r2v.tasks.ports import TaskQuery
from r2v.tasks.service import TaskView

PREFIX = "/api/v3/contents/generations/tasks"

MODEL_ALIASES = {
    STANDARD_MODEL: STANDARD_MODEL,
    FAST_MODEL: FAST_MODEL,
    "dreamina-seedance-2-0-260128": STANDARD_MODEL,
    "doubao-seedance-2-0-260128": STANDARD_MODEL,
    "dreamina-seedance-2-0-fast-260128": FAST_MODEL,
    "doubao-seedance-2-0-fast-260128": FAST_MODEL,
}
"""The model names this door takes: ours, and Seedance 2.0's ids on BytePlus and Volcengine."""

ArkStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "expired"]

# Ark's statuses as filters of the task table (`filter.status`)
STATUS_QUERIES: dict[str, TaskQuery] = {
    "queued": TaskQuery(status=TaskStatus.PENDING.value),
    "running": TaskQuery(status=TaskStatus.PROCESSING.value),
    "succeeded": TaskQuery(status=TaskStatus.COMPLETED.value, has_result=True),
    "expired": TaskQuery(status=TaskStatus.COMPLETED.value, has_result=False),
    "failed": TaskQuery(status=TaskStatus.FAILED.value, cancelled=False),
    "cancelled": TaskQuery(status=TaskStatus.FAILED.value, cancelled=True),
}

_MEDIA_ROLES = {
    "image_url": ("image", ("reference_image", "first_frame", "last_frame")),
    "video_url": ("video", ("reference_video",)),
    "audio_url": ("audio", ("reference_audio",)),
}


def _drop_nulls(data: Any) -> Any:
    if isinstance(data, dict):
        return {key: value for key, value in data.items() if value is not None}
    return data


class ArkMedia(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str = Field(max_length=4096, description="An http(s) URL (or `asset://<id>`).")


class ArkContentItem(BaseModel):
    """One item of `content`: the prompt, or a reference with its role."""

    model_config = ConfigDict(extra="ignore")

    type: str = Field(description="`text`, `image_url`, `video_url` or `audio_url`.")
    text: str | None = None
    image_url: ArkMedia | None = None
    video_url: ArkMedia | None = None
    audio_url: ArkMedia | None = None
    role: str | None = Field(
        None,
        description="`reference_image`, `first_frame`, `last_frame`, `reference_video`, "
        "`reference_audio`; an image without one is the first frame, as on Ark.",
    )

    @model_validator(mode="before")
    @classmethod
    def _absent(cls, data: Any) -> Any:
        return _drop_nulls(data)


class ArkCreateBody(BaseModel):
    """The body of an Ark create. Fields r2v cannot honour are ignored when harmless and
    refused, naming the field, when ignoring them would change the video."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(
        description="`seedance-2.0-reference-to-video`, `seedance-2.0-fast-reference-to-video`, "
        "or Ark's ids of them (`dreamina-seedance-2-0-260128`, `…-fast-260128`, `doubao-…`)."
    )
    content: list[ArkContentItem] = Field(max_length=32)
    resolution: str | None = None
    ratio: str | None = None
    duration: StrictInt | None = None
    frames: StrictInt | None = None
    seed: StrictInt | None = None
    generate_audio: StrictBool | None = None
    callback_url: str | None = None
    return_last_frame: StrictBool | None = None
    watermark: bool | None = Field(None, description="Ignored: r2v never watermarks.")
    service_tier: str | None = Field(None, description="Accepted and reported; one tier here.")
    execution_expires_after: int | None = Field(None, description="Accepted, not enforced.")
    priority: int | None = Field(None, description="Accepted, not used.")
    safety_identifier: str | None = Field(None, max_length=256, description="Accepted.")
    draft: bool | None = Field(None, description="Only false: r2v renders no draft samples.")
    camera_fixed: bool | None = Field(
        None, description="Only false: describe the camera in the prompt."
    )
    output_format: str | None = Field(None, description="Only `mp4`.")
    omni_reference_task_type: str | None = Field(None, description="Accepted, not used.")
    tools: list[Any] | None = Field(None, description="Only empty: no tools run here.")

    @model_validator(mode="before")
    @classmethod
    def _absent(cls, data: Any) -> Any:
        return _drop_nulls(data)


def _refuse(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {message}", param=param)


_V1_REFERENCE = re.compile(r"\b(image|video|audio)_urls(?:\[(\d+)\])?")


def in_ark_terms(exc: InvalidRequest, body: ArkCreateBody) -> InvalidRequest:
    """A refusal of the `/v1` request (by the service's rules) told in the body's own terms:
    `image_urls[1]` is the `content` item it came from."""
    where: dict[str, list[int]] = {"image": [], "video": [], "audio": []}
    for position, item in enumerate(body.content):
        if item.type in _MEDIA_ROLES:
            where[_MEDIA_ROLES[item.type][0]].append(position)

    def item_of(match: re.Match[str]) -> str:
        kind, index = match.group(1), match.group(2)
        if index is not None and int(index) < len(where[kind]):
            return f"content[{where[kind][int(index)]}]"
        return f"{kind}_url items"

    param = exc.param
    if param is not None and _V1_REFERENCE.fullmatch(param):
        found = _V1_REFERENCE.search(exc.message)
        param = item_of(found) if found and found.group(2) else "content"
    renamed = InvalidRequest(_V1_REFERENCE.sub(item_of, exc.message), param=param)
    renamed.code = exc.code
    return renamed


def to_request(body: ArkCreateBody) -> CreateVideoRequest:
    """The `/v1` create request an Ark body asks for (`InvalidRequest` naming the field)."""
    model = MODEL_ALIASES.get(body.model)
    if model is None:
        raise _refuse("model", f"{body.model!r} is not served here: use one of "
                      f"{', '.join(MODEL_ALIASES)}")  # fmt: skip
    fields: dict[str, Any] = {"model": model}
    prompts: list[str] = []
    urls: dict[str, list[str]] = {"image": [], "video": [], "audio": []}
    for position, item in enumerate(body.content):
        where = f"content[{position}]"
        if item.type == "text":
            if item.text is None:
                raise _refuse(where, "a text item needs `text`")
            prompts.append(item.text)
            continue
        if item.type not in _MEDIA_ROLES:
            raise _refuse(where, f"type {item.type!r} is not supported here: send text, "
                          "image_url, video_url or audio_url items")  # fmt: skip
        kind, roles = _MEDIA_ROLES[item.type]
        media: ArkMedia | None = getattr(item, item.type)
        if media is None:
            raise _refuse(where, f'an {item.type} item needs `{item.type}: {{"url": …}}`')
        role = item.role or ("first_frame" if kind == "image" else roles[0])
        if role not in roles:
            raise _refuse(f"{where}.role", f"{role!r} is not a role of {item.type}: use "
                          f"{' or '.join(roles)}")  # fmt: skip
        if media.url.startswith("data:"):
            raise _refuse(f"{where}.{item.type}.url", "base64 data URLs are not taken here: "
                          "upload the file with POST /v1/files and send its url")  # fmt: skip
        urls[kind].append(media.url)
        if role in ("first_frame", "last_frame"):
            pin = f"{role}_image"
            if pin in fields:
                raise _refuse(f"{where}.role", f"only one image may be the {role}")
            fields[pin] = len(urls["image"])
    if len(prompts) != 1:
        raise InvalidRequest(
            f"content: send exactly one text item (the prompt); got {len(prompts)}",
            param="content",
            code="MissingParameter" if not prompts else "InvalidParameter",
        )
    fields["prompt"] = prompts[0]
    fields |= {f"{kind}_urls": found for kind, found in urls.items() if found}
    for name, target in (
        ("resolution", "resolution"),
        ("ratio", "aspect_ratio"),
        ("duration", "duration"),
        ("seed", "seed"),
        ("generate_audio", "generate_audio"),
        ("callback_url", "callback_url"),
        ("return_last_frame", "return_last_frame"),
    ):
        value = getattr(body, name)
        if value is not None:
            fields[target] = value
    if body.frames is not None:
        seconds, extra = divmod(body.frames, FPS)
        if extra or not MIN_DURATION <= seconds <= MAX_DURATION:
            raise _refuse("frames", f"send a whole number of seconds at {FPS} fps "
                          f"({MIN_DURATION * FPS}-{MAX_DURATION * FPS}, a multiple of {FPS}), "
                          "or use duration")  # fmt: skip
        if body.duration is not None and body.duration != seconds:
            raise _refuse("frames", "frames and duration disagree: send one of them")
        fields["duration"] = seconds
    _refuse_unhonoured(body)
    try:
        return CreateVideoRequest.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first["loc"]
        name = {"aspect_ratio": "ratio"}.get(str(loc[0]), str(loc[0])) if loc else "content"
        message = str(first["msg"]).removeprefix("Value error, ")
        numbered = re.match(r"item (\d+) ", message)  # a bad URL of a reference list
        index = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
        if numbered is not None:
            index, message = int(numbered.group(1)), message[numbered.end() :]
        where = name if index is None else f"{name}[{index}]"
        refused = InvalidRequest(f"{where}: {message}", param=name)
        raise in_ark_terms(refused, body) from None


def _refuse_unhonoured(body: ArkCreateBody) -> None:
    if body.draft:
        raise _refuse("draft", "draft samples are not rendered here: send draft false")
    if body.camera_fixed:
        raise _refuse("camera_fixed", "not supported by Seedance 2.0 reference-to-video: "
                      "describe the camera in the prompt (\"a fixed camera\")")  # fmt: skip
    if body.output_format not in (None, "mp4"):
        raise _refuse("output_format", "only mp4 is produced here")
    if body.tools:
        raise _refuse("tools", "no tools run here: send an empty list or none")


def ark_status(view: TaskView) -> ArkStatus:
    record = view.record
    status = record.wire_status
    if status is TaskStatus.PENDING:
        return "queued"
    if status is TaskStatus.PROCESSING:
        return "running"
    if status is TaskStatus.COMPLETED:
        return "succeeded" if record.result_key else "expired"
    if record.error_code == TaskErrorCode.REQUEST_CANCELLED.value:
        return "cancelled"
    return "failed"


def _ratio(view: TaskView) -> str:
    size = view.size
    if size is not None:
        for ratios in OUTPUT_SIZES.values():
            for ratio, known in ratios.items():
                if known == size:
                    return ratio
    return view.record.request.aspect_ratio


def ark_task(view: TaskView) -> dict[str, Any]:
    """A task as Ark's task object."""
    record = view.record
    request = record.request
    status = ark_status(view)
    duration = record.video_duration
    task: dict[str, Any] = {
        "id": record.id,
        "model": record.model,
        "status": status,
        "error": None,
        "created_at": int(record.created_at),
        "updated_at": int(record.updated_at),
        "seed": record.seed,
        "resolution": request.resolution,
        "ratio": _ratio(view),
        "duration": duration,
        "frames": duration * FPS if duration > 0 else -1,
        "framespersecond": FPS,
        "generate_audio": request.generate_audio,
        "draft": False,
        "service_tier": "default",
    }
    if status in ("failed", "cancelled"):
        task["error"] = {
            "code": record.error_code or "unknown_error",
            "message": record.error_message or "the task failed",
        }
    if status == "succeeded" and view.video_url is not None:
        task["content"] = {"video_url": view.video_url}
        if view.last_frame_url is not None:
            task["content"]["last_frame_url"] = view.last_frame_url
        task["usage"] = _usage(view)
    return task


def _usage(view: TaskView) -> dict[str, int]:
    record = view.record
    upstream = json.loads(record.upstream_usage) if record.upstream_usage else {}
    tokens = upstream.get("completion_tokens")
    if not isinstance(tokens, int):
        width, height = view.size or (0, 0)
        tokens = width * height * max(record.video_duration, 0) * FPS // 1024
    total = upstream.get("total_tokens")
    return {
        "completion_tokens": tokens,
        "total_tokens": total if isinstance(total, int) else tokens,
    }


ark = APIRouter(prefix=PREFIX, tags=["Ark door"])


_CREATE_EXAMPLE = {
    "model": "dreamina-seedance-2-0-260128",
    "content": [
        {"type": "text", "text": "@Image1 walks along the beach at sunset, dancing like @Video1"},
        {
            "type": "image_url",
            "image_url": {"url": "https://example.com/refs/dancer.jpg"},
            "role": "reference_image",
        },
        {
            "type": "video_url",
            "video_url": {"url": "https://example.com/refs/moves.mp4"},
            "role": "reference_video",
        },
    ],
    "ratio": "16:9",
    "duration": 5,
    "generate_audio": True,
}
_CREATED = {
    "content": {"application/json": {"example": {"id": "task-unified-1757165031-uyujaw3d"}}}
}
_DELETED: dict[str, Any] = {"content": {"application/json": {"example": {}}}}


@ark.post(
    "",
    summary="Create a task (Ark)",
    responses=answers(400, 401, 409, 413, 429, 503, door="ark", ok=_CREATED, creates=True),
    openapi_extra={"requestBody": {"content": {"application/json": {"example": _CREATE_EXAMPLE}}}}
    | EXTENSION,
)
async def create_task(
    body: Annotated[ArkCreateBody, Body()],
    request: Request,
    key: Key,
    svc: Services,
    idempotency_key: Annotated[
        str | None,
        Header(description="The same key and body within 24 h: the same task."),
    ] = None,
) -> dict[str, str]:
    """Create a task (Ark's `content_generation.tasks.create`); answers its id."""
    wanted = to_request(body)
    window = svc.ark_retry_window_seconds
    if idempotency_key is None and window > 0:
        # the SDK's resend of this create, if one comes, answers the same task
        digest = hashlib.sha256(wanted.model_dump_json().encode()).hexdigest()
        idempotency_key = f"ark-resend:{digest}"
    else:
        window = 86400.0
    base_url = svc.base_url(request.scope)
    try:
        record = await run_in_threadpool(
            lambda: svc.tasks.submit(
                key,
                wanted,
                idempotency_key=idempotency_key,
                idempotency_window=window,
                base_url=base_url,
            )
        )
    except InvalidRequest as exc:
        raise in_ark_terms(exc, body) from None
    request.scope["r2v.stored"] = True  # a 5xx from here on says not to resend
    return {"id": record.id}


@ark.get(
    "/{task_id}",
    summary="Get a task (Ark)",
    responses=answers(400, 401, 404, 503, door="ark"),
    openapi_extra=EXTENSION,
)
def get_task(task_id: str, request: Request, key: Key, svc: Services) -> dict[str, Any]:
    """A task as Ark's task object; `content.video_url` is a signed link valid 24 h."""
    record = svc.tasks.record(key.id, task_id)
    return ark_task(svc.tasks.view(record, svc.base_url(request.scope)))


@ark.get(
    "",
    summary="List tasks (Ark)",
    responses=answers(400, 401, 503, door="ark"),
    openapi_extra=EXTENSION,
)
def list_tasks(
    request: Request,
    key: Key,
    svc: Services,
    page_num: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 10,
    status: Annotated[ArkStatus | None, Query(alias="filter.status")] = None,
    task_ids: Annotated[list[str] | None, Query(alias="filter.task_ids", max_length=500)] = None,
    model: Annotated[str | None, Query(alias="filter.model")] = None,
    _tier: Annotated[str | None, Query(alias="filter.service_tier")] = None,
) -> dict[str, Any]:
    """The key's tasks, newest first: `{"total", "items"}`."""
    query = STATUS_QUERIES[status] if status is not None else TaskQuery()
    if task_ids:
        query = replace(query, ids=tuple(task_ids))
    if model is not None:
        query = replace(query, models=(MODEL_ALIASES.get(model, model),))
    total, views = svc.tasks.find(
        key.id, query, (page_num - 1) * page_size, page_size, svc.base_url(request.scope)
    )
    return {"total": total, "items": [ark_task(view) for view in views]}


@ark.delete(
    "/{task_id}",
    summary="Cancel or delete a task (Ark)",
    responses=answers(400, 401, 404, 409, 503, door="ark", ok=_DELETED),
    openapi_extra=EXTENSION,
)
def delete_task(task_id: str, request: Request, key: Key, svc: Services) -> Response:
    """Cancel a queued or running task (it stays, `cancelled`); delete a finished one
    (its video too: its id then answers 404)."""
    record = svc.tasks.record(key.id, task_id)
    if record.terminal:
        svc.tasks.delete(key.id, task_id)
    else:
        try:
            svc.tasks.cancel(key.id, task_id, svc.base_url(request.scope))
        except Conflict:
            # it finished meanwhile: a finished task is deleted
            if not svc.tasks.record(key.id, task_id).terminal:
                raise
            svc.tasks.delete(key.id, task_id)
    return Response("{}", media_type="application/json")
