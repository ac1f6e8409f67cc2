"""OpenAI's door: the Videos API at `/v1/videos`, for the `openai` SDK unchanged.

`client.videos.create_and_poll`, `retrieve`, `list`, `download_content`, `delete` and
`remix` work against r2v as against any server of that API. Translation only: a create
becomes the `/v1` create request and goes through the same `TaskService`; a stored task is
shown as OpenAI's video object. Its errors are r2v's envelope, which is OpenAI's.

The SDK always sends a create as multipart: `input_reference` (one file: an image, a video
or an audio clip, which becomes `@Image1`, `@Video1` or `@Audio1` ahead of the URLs of its
kind), and r2v's own fields as `extra_body` form fields (`image_urls[]`, `video_urls[]`,
`audio_urls[]`, `generate_audio`, `seed`, `aspect_ratio`, `resolution`).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from r2v.api.docs import POLL_HINT, answers, file_answers
from r2v.api.polls import hint_headers
from r2v.api.routes import Key, Services, serve_blob
from r2v.api.services import ApiServices
from r2v.engines.base import nearest_aspect_ratio
from r2v.errors import InvalidRequest, NotFound, RequestError
from r2v.protocol import (
    EXTENSION,
    MODELS,
    OUTPUT_SIZES,
    STANDARD_MODEL,
    CreateVideoRequest,
    TaskStatus,
)
from r2v.tasks.ports import ApiKey, FileRecord
from r2v.tasks.service import TaskView

VideoStatus = Literal["queued", "in_progress", "completed", "failed"]
_STATUS: dict[TaskStatus, VideoStatus] = {
    TaskStatus.PENDING: "queued",
    TaskStatus.PROCESSING: "in_progress",
    TaskStatus.COMPLETED: "completed",
    TaskStatus.FAILED: "failed",
}
_SIZE = re.compile(r"^\s*(\d{2,5})\s*[xX×]\s*(\d{2,5})\s*$")
_LISTS = ("image_urls", "video_urls", "audio_urls")
_SCALARS = ("model", "prompt", "seconds", "size", "aspect_ratio", "resolution", "seed",
            "generate_audio", "duration", "callback_url")  # fmt: skip


class VideoError(BaseModel):
    code: str
    message: str


class VideoObject(BaseModel):
    """A task as OpenAI's video object."""

    id: str
    object: Literal["video"] = "video"
    model: str
    status: VideoStatus
    progress: int = Field(ge=0, le=100)
    created_at: int
    completed_at: int | None = None
    expires_at: int | None = Field(None, description="When the video is deleted.")
    seconds: str | None = Field(None, description="Seconds of video; none until decided.")
    size: str | None = Field(None, description="`WIDTHxHEIGHT` produced (or planned).")
    prompt: str
    error: VideoError | None = None
    remixed_from_video_id: str | None = None


class VideoList(BaseModel):
    object: Literal["list"] = "list"
    data: list[VideoObject]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None


class VideoDeleted(BaseModel):
    id: str
    object: Literal["video.deleted"] = "video.deleted"
    deleted: bool = True


class RemixBody(BaseModel):
    prompt: str = Field(min_length=1, max_length=5000)


def video_object(view: TaskView) -> VideoObject:
    record = view.record
    request = record.request
    size = view.size
    error = None
    if record.status is TaskStatus.FAILED:
        error = VideoError(
            code=record.error_code or "unknown_error",
            message=record.error_message or "the task failed",
        )
    completed = record.status is TaskStatus.COMPLETED
    return VideoObject(
        id=record.id,
        model=record.model,
        status=_STATUS[record.wire_status],
        progress=100 if completed else record.progress,
        created_at=int(record.created_at),
        completed_at=int(record.finished_at) if completed and record.finished_at else None,
        expires_at=int(record.result_expires_at) if record.result_expires_at else None,
        seconds=str(record.video_duration) if record.video_duration > 0 else None,
        size=f"{size[0]}x{size[1]}" if size else None,
        prompt=request.prompt,
        error=error,
        remixed_from_video_id=record.remixed_from,
    )


def nearest_size(width: int, height: int) -> tuple[str, str]:
    """(resolution, aspect ratio) of the entry of the size table nearest `width`x`height`:
    the ratio nearest on a log scale, then the resolution nearest in pixel count."""
    ratio = nearest_aspect_ratio(width, height)
    resolution = min(
        OUTPUT_SIZES,
        key=lambda res: abs(math.log(_area(OUTPUT_SIZES[res][ratio]) / (width * height))),
    )
    return resolution, ratio


def _area(size: tuple[int, int]) -> int:
    return size[0] * size[1]


def to_request(fields: dict[str, Any], uploaded: tuple[str, str] | None) -> CreateVideoRequest:
    """The `/v1` create request of an OpenAI create's fields; `uploaded` is (kind, URL) of
    the `input_reference`, which goes first in its kind's list."""
    wanted: dict[str, Any] = {}
    model = fields.get("model") or STANDARD_MODEL
    if model not in MODELS:
        raise InvalidRequest(
            f"model {str(model)[:80]!r} is not served here: use {' or '.join(MODELS)}",
            param="model",
        )
    wanted["model"] = model
    for name in ("prompt", "callback_url", "aspect_ratio", "resolution"):
        if fields.get(name) is not None:
            wanted[name] = fields[name]
    size = fields.get("size")
    if size is not None:
        match = _SIZE.match(str(size))
        if not match or not int(match.group(1)) or not int(match.group(2)):
            raise InvalidRequest(
                f"size {str(size)[:40]!r}: send WIDTHxHEIGHT, e.g. 1280x720", param="size"
            )
        resolution, ratio = nearest_size(int(match.group(1)), int(match.group(2)))
        wanted.setdefault("resolution", resolution)
        wanted.setdefault("aspect_ratio", ratio)
    seconds = fields.get("seconds", fields.get("duration"))
    if seconds is not None:
        wanted["duration"] = _integer("seconds", seconds)
    if fields.get("seed") is not None:
        wanted["seed"] = _integer("seed", fields["seed"])
    if fields.get("generate_audio") is not None:
        wanted["generate_audio"] = _boolean("generate_audio", fields["generate_audio"])
    for name in _LISTS:
        if fields.get(name):
            wanted[name] = list(fields[name])
    if uploaded is not None:
        kind, url = uploaded
        wanted[f"{kind}_urls"] = [url, *wanted.get(f"{kind}_urls", [])]
    try:
        return CreateVideoRequest.model_validate(wanted)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["loc"] and first["loc"][0] == "duration":  # the door's name of it
            message = str(first["msg"]).removeprefix("Value error, ").replace("duration", "seconds")
            raise InvalidRequest(f"seconds: {message}", param="seconds") from None
        raise RequestValidationError(exc.errors()) from None


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidRequest(f"{name}: send a whole number", param=name)
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not re.fullmatch(r"-?\d{1,12}", text):
        raise InvalidRequest(f"{name}: send a whole number, got {text[:40]!r}", param=name)
    return int(text)


def _boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise InvalidRequest(f"{name}: send true or false", param=name)
    return text == "true"


def _form_fields(form: FormData) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in _SCALARS:
        value = form.get(name)
        if isinstance(value, str):
            fields[name] = value
    for name in _LISTS:
        values = [v for v in form.getlist(f"{name}[]") + form.getlist(name) if isinstance(v, str)]
        if values:
            fields[name] = values
    for name in ("image_url", "file_id"):
        value = form.get(f"input_reference[{name}]")
        if isinstance(value, str):
            fields[f"input_reference.{name}"] = value
    return fields


async def _store_upload(svc: ApiServices, key: ApiKey, upload: UploadFile) -> FileRecord:
    """An `input_reference` file, kept as an upload of the key (`POST /v1/files`'s rules,
    rate and quota)."""
    try:
        await run_in_threadpool(svc.files.admit, key.id)
        return await run_in_threadpool(svc.files.upload, key.id, upload.file, upload.filename)
    except RequestError as exc:
        if exc.param == "file":  # the field's name on this door
            exc.param = "input_reference"
        raise


def _reference(
    svc: ApiServices, key: ApiKey, fields: dict[str, Any], upload: FileRecord | None, base: str
) -> tuple[str, str] | None:
    """The `input_reference` as (kind, URL): the uploaded file, or a reference object naming
    an image URL or an earlier upload's id."""
    if upload is not None:
        return upload.kind, svc.files.to_wire(upload, base).url
    if "input_reference.image_url" in fields:
        return "image", str(fields["input_reference.image_url"])
    if "input_reference.file_id" in fields:
        found = svc.files.get(key.id, str(fields["input_reference.file_id"]))
        return found.kind, svc.files.to_wire(found, base).url
    return None


videos = APIRouter(prefix="/v1/videos", tags=["OpenAI door"])

_CREATE_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["prompt"],
                "properties": {
                    "prompt": {
                        "type": "string",
                        "examples": ["@Image1 waves at the camera on a windy beach"],
                    },
                    "model": {"type": "string", "enum": list(MODELS)},
                    "seconds": {"type": "string", "examples": ["5"]},
                    "size": {"type": "string", "examples": ["1280x720"]},
                    "input_reference": {"type": "string", "format": "binary"},
                    "image_urls[]": {
                        "type": "array",
                        "items": {"type": "string"},
                        "examples": [["https://example.com/refs/dancer.jpg"]],
                    },
                    "video_urls[]": {"type": "array", "items": {"type": "string"}},
                    "audio_urls[]": {"type": "array", "items": {"type": "string"}},
                    "generate_audio": {"type": "string", "enum": ["true", "false"]},
                    "seed": {"type": "string", "examples": ["-1"]},
                    "aspect_ratio": {"type": "string", "examples": ["16:9"]},
                    "resolution": {"type": "string", "examples": ["720p"]},
                },
            }
        },
        "application/json": {"schema": {"type": "object"}},
    },
}


def _answer(response: Response, svc: ApiServices, view: TaskView, base: str) -> VideoObject:
    # `openai-poll-after-ms`, the hint the SDK's `poll()` honours, from the task's progress
    response.headers.update(hint_headers(svc.tasks.to_wire(view.record, base)))
    return video_object(view)


@videos.post(
    "",
    summary="Create a video (OpenAI)",
    responses=answers(400, 401, 404, 413, 429, 503, ok=POLL_HINT),
    openapi_extra={"requestBody": _CREATE_BODY} | EXTENSION,
)
async def create_video(
    request: Request, response: Response, key: Key, svc: Services
) -> VideoObject:
    """Create a video (`client.videos.create`), multipart as the SDK sends it, or JSON."""
    base = svc.base_url(request.scope)
    upload: UploadFile | None = None
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("application/json", "multipart/form-data")):
        raise InvalidRequest(
            "send the create as multipart/form-data (as the openai SDK does) or as JSON"
        )
    if content_type.startswith("application/json"):
        try:
            fields = await request.json()
        except ValueError:
            raise InvalidRequest("the body is not valid JSON: send a JSON object") from None
        if not isinstance(fields, dict):
            raise InvalidRequest("the body must be a JSON object")
        reference = fields.pop("input_reference", None)
        if isinstance(reference, dict):
            for name in ("image_url", "file_id"):
                if isinstance(reference.get(name), str):
                    fields[f"input_reference.{name}"] = reference[name]
        form = None
    else:
        form = await request.form(max_files=1, max_fields=64)
        fields = _form_fields(form)
        found = form.get("input_reference")
        upload = found if isinstance(found, UploadFile) else None
    stored: FileRecord | None = None
    try:
        if upload is not None:
            stored = await _store_upload(svc, key, upload)
        wanted = to_request(fields, _reference(svc, key, fields, stored, base))
        record = await run_in_threadpool(lambda: svc.tasks.submit(key, wanted, base_url=base))
    except Exception:
        if stored is not None:  # a refused create keeps nothing
            await run_in_threadpool(svc.files.discard, stored)
        raise
    finally:
        if form is not None:
            await form.close()
    request.scope["r2v.stored"] = True
    return _answer(response, svc, svc.tasks.view(record, base), base)


@videos.get(
    "",
    summary="List videos (OpenAI)",
    responses=answers(400, 401, 503),
    openapi_extra=EXTENSION,
)
def list_videos(
    request: Request,
    key: Key,
    svc: Services,
    after: Annotated[str | None, Query(description="The last id of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
) -> VideoList:
    """The key's videos, newest first (`order=asc`: oldest first), cursor paged."""
    base = svc.base_url(request.scope)
    records, has_more = svc.tasks.records_page(key.id, limit, after, oldest_first=order == "asc")
    data = [video_object(svc.tasks.view(record, base)) for record in records]
    return VideoList(
        data=data,
        has_more=has_more,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
    )


@videos.get(
    "/{video_id}",
    summary="Retrieve a video (OpenAI)",
    responses=answers(400, 401, 404, 503, ok=POLL_HINT),
    openapi_extra=EXTENSION,
)
def retrieve_video(
    video_id: str, request: Request, response: Response, key: Key, svc: Services
) -> VideoObject:
    """A video (`client.videos.retrieve`), with `openai-poll-after-ms` while unfinished."""
    base = svc.base_url(request.scope)
    return _answer(response, svc, svc.tasks.view(svc.tasks.record(key.id, video_id), base), base)


@videos.get(
    "/{video_id}/content",
    response_class=Response,
    summary="Download a video or its pictures (OpenAI)",
    responses=file_answers("video/mp4", "image/jpeg") | answers(400, 401, 404, 410, 503),
    openapi_extra=EXTENSION,
)
def download_content(
    video_id: str,
    key: Key,
    svc: Services,
    variant: Annotated[Literal["video", "thumbnail", "spritesheet"], Query()] = "video",
) -> Response:
    """The MP4; `thumbnail`: a JPEG of the first frame; `spritesheet`: a JPEG grid of frames."""
    record = svc.tasks.record(key.id, video_id)
    if record.status is not TaskStatus.COMPLETED:
        raise NotFound(
            f"video {video_id} is {_STATUS[record.wire_status]}: its content exists once it "
            "has completed",
            code="video_not_ready",
        )
    if variant == "video":
        found = svc.tasks.result_location_of(record)
        return serve_blob(found, "video/mp4", f"{video_id}.mp4")
    still, media_type = svc.tasks.still(key.id, video_id, variant)
    return serve_blob(still, media_type)


@videos.delete(
    "/{video_id}",
    summary="Delete a video (OpenAI)",
    responses=answers(400, 401, 404, 503),
    openapi_extra=EXTENSION,
)
def delete_video(video_id: str, key: Key, svc: Services) -> VideoDeleted:
    """Cancel the video if unfinished, then delete it and its files: its id then answers
    404 through every door."""
    svc.tasks.delete(key.id, video_id)
    return VideoDeleted(id=video_id)


@videos.post(
    "/{video_id}/remix",
    summary="Remix a video (OpenAI)",
    responses=answers(400, 401, 404, 413, 429, 503, ok=POLL_HINT),
    openapi_extra=EXTENSION,
)
async def remix_video(
    video_id: str,
    body: Annotated[RemixBody, Body()],
    request: Request,
    response: Response,
    key: Key,
    svc: Services,
) -> VideoObject:
    """A new video with this one's references and settings and a new prompt."""
    base = svc.base_url(request.scope)
    record = await run_in_threadpool(svc.tasks.remix, key, video_id, body.prompt, base)
    request.scope["r2v.stored"] = True
    return _answer(response, svc, svc.tasks.view(record, base), base)
