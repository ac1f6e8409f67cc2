"""Wire models of the Seedance 2.0 reference-to-video API, shared by the server and the SDK.

Everything here is the contract of shared/API.md: field names, defaults, limits, the task
object and the error envelope. Only pydantic and the standard library are imported, so the
SDK can use these models without pulling in any server code.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

STANDARD_MODEL = "seedance-2.0-reference-to-video"
FAST_MODEL = "seedance-2.0-fast-reference-to-video"
MODELS: tuple[str, ...] = (STANDARD_MODEL, FAST_MODEL)

ModelName = Literal["seedance-2.0-reference-to-video", "seedance-2.0-fast-reference-to-video"]
Resolution = Literal["480p", "720p"]
AspectRatio = Literal["16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive"]
FixedAspectRatio = Literal["16:9", "4:3", "1:1", "3:4", "9:16", "21:9"]

FPS = 24
MIN_DURATION = 4
MAX_DURATION = 15
AUTO_DURATION = -1
AUTO_SEED = -1
MAX_SEED = 2**32 - 1
MAX_PROMPT_CHARS = 5000
MAX_IMAGES = 9
MAX_VIDEOS = 3
MAX_AUDIOS = 3
MAX_REFERENCES = 12
MAX_URL_CHARS = 2048

MAX_IMAGE_BYTES = 30 * 1000 * 1000
MAX_VIDEO_TOTAL_BYTES = 50 * 1000 * 1000
MIN_VIDEO_TOTAL_SECONDS = 2.0
MAX_VIDEO_TOTAL_SECONDS = 15.0
MAX_AUDIO_BYTES = 15 * 1000 * 1000
MAX_AUDIO_SECONDS = 15.0

# (width, height) of every output, by resolution and aspect ratio: the exact table of API.md.
OUTPUT_SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "480p": {
        "16:9": (864, 496),
        "4:3": (752, 560),
        "1:1": (640, 640),
        "3:4": (560, 752),
        "9:16": (496, 864),
        "21:9": (992, 432),
    },
    "720p": {
        "16:9": (1248, 704),
        "4:3": (1120, 832),
        "1:1": (960, 960),
        "3:4": (832, 1120),
        "9:16": (704, 1248),
        "21:9": (1504, 640),
    },
}

TASK_ID_PATTERN = re.compile(r"^task-unified-[0-9]{1,12}-[a-z0-9]{8}$")
FILE_ID_PATTERN = re.compile(r"^file-[a-z0-9]{24}$")
# An uploaded file's URL, on whatever host the server was reached at: `…/v1/files/<id>/content`
_FILE_URL_PATH = re.compile(r"/v1/files/(file-[a-z0-9]{24})/content$")


class TaskStatus(StrEnum):
    """The four statuses a client of the hosted API knows; cancellation ends `failed`."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (TaskStatus.COMPLETED, TaskStatus.FAILED)


class TaskErrorCode(StrEnum):
    """Why a task failed: the `error.code` of a failed task object."""

    INVALID_PARAMETERS = "invalid_parameters"
    REFERENCE_FETCH_FAILED = "reference_fetch_failed"
    REFERENCE_INVALID = "reference_invalid"
    REQUEST_CANCELLED = "request_cancelled"
    CONTENT_POLICY_VIOLATION = "content_policy_violation"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    GENERATION_FAILED = "generation_failed"
    GENERATION_TIMEOUT = "generation_timeout"
    SERVICE_ERROR = "service_error"
    UNKNOWN_ERROR = "unknown_error"


ReferenceKind = Literal["image", "video", "audio"]

EXTENSION: dict[str, Any] = {"x-r2v-extension": True}
"""The JSON-schema (and OpenAPI) mark of what r2v adds to the Seedance 2.0 API."""

_EXAMPLE_TASK_ID = "task-unified-1757165031-uyujaw3d"
_EXAMPLE_RESULT = (
    f"https://r2v.example.com/results/{_EXAMPLE_TASK_ID}/video.mp4"
    "?expires=1757251431&signature=n4bQgYhMS2Zx0Hc6Yt3v8sQm1KpL7wRa9eFj5uDcXo0"
)


def _drop_nulls(data: Any) -> Any:
    # JSON null for an optional field means "absent": let the default apply.
    if isinstance(data, dict):
        return {key: value for key, value in data.items() if value is not None}
    return data


class CreateVideoRequest(BaseModel):
    """The body of `POST /v1/videos/generations`.

    Unknown fields are ignored and `null` means absent. `quality` is accepted as an alias of
    `resolution`. Rules across fields (mentions, totals, audio needing a visual reference)
    are checked by the service, which names the failing field.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    model: ModelName = Field(
        description="`seedance-2.0-reference-to-video` or the fast variant.",
        examples=[STANDARD_MODEL],
    )
    prompt: str = Field(
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
        description="1-5000 characters; `@Image1`, `@Video1`, `@Audio1` name references.",
        examples=["@Image1 walks along the beach at sunset, dancing like @Video1, to @Audio1"],
    )
    resolution: Resolution = Field(
        "720p", description="`480p` or `720p` (alias: `quality`).", examples=["720p"]
    )
    aspect_ratio: AspectRatio = Field(
        "adaptive",
        description="One of six ratios, or `adaptive` to follow the references.",
        examples=["16:9"],
    )
    duration: StrictInt = Field(
        5, description="Seconds, 4-15, or -1 to let the engine decide.", examples=[5]
    )
    generate_audio: StrictBool = Field(
        True, description="Give the video a soundtrack.", examples=[True]
    )
    seed: StrictInt = Field(
        AUTO_SEED,
        ge=AUTO_SEED,
        le=MAX_SEED,
        description="-1 draws one; the task reports it.",
        examples=[-1],
    )
    image_urls: Annotated[list[str], Field(max_length=MAX_IMAGES)] = Field(
        default_factory=list,
        description="Up to 9 JPEG, PNG or WebP URLs, each at most 30 MB. An r2v extension: "
        "`asset://…` ids of Ark's asset library, for models served by an upstream.",
        examples=[["https://example.com/refs/dancer.jpg"]],
    )
    video_urls: Annotated[list[str], Field(max_length=MAX_VIDEOS)] = Field(
        default_factory=list,
        description="Up to 3 MP4 or MOV URLs, 2-15 s and under 50 MB in all.",
        examples=[["https://example.com/refs/moves.mp4"]],
    )
    audio_urls: Annotated[list[str], Field(max_length=MAX_AUDIOS)] = Field(
        default_factory=list,
        description="Up to 3 MP3 or WAV URLs, each at most 15 s and 15 MB.",
        examples=[["https://example.com/refs/waves.mp3"]],
    )
    callback_url: str | None = Field(
        None,
        max_length=MAX_URL_CHARS,
        description="Where to POST the finished (or failed) task, signed as a Standard Webhook.",
        examples=["https://example.com/hooks/r2v"],
        json_schema_extra=EXTENSION,
    )
    first_frame_image: StrictInt | None = Field(
        None,
        ge=1,
        le=MAX_IMAGES,
        description="The image (1-based, in image_urls) the video opens on, exactly, as "
        "Ark's `first_frame` role; a prompt's own wording (\"@Image1 as the first frame\") "
        "pins frames too.",
        examples=[1],
        json_schema_extra=EXTENSION,
    )
    last_frame_image: StrictInt | None = Field(
        None,
        ge=1,
        le=MAX_IMAGES,
        description="The image (1-based, in image_urls) the video ends on, exactly.",
        examples=[1],
        json_schema_extra=EXTENSION,
    )
    return_last_frame: StrictBool = Field(
        False,
        description="Also offer a PNG of the video's last frame (Ark's option).",
        examples=[False],
        json_schema_extra=EXTENSION,
    )

    @model_validator(mode="before")
    @classmethod
    def _absent_and_aliases(cls, data: Any) -> Any:
        data = _drop_nulls(data)
        if isinstance(data, dict) and "quality" in data:
            data = dict(data)
            quality = data.pop("quality")
            if "resolution" not in data:
                data["resolution"] = quality
            elif data["resolution"] != quality:
                raise ValueError(
                    "quality is an alias of resolution: send one of them, or the same value"
                )
        return data

    @field_validator("duration")
    @classmethod
    def _duration_range(cls, value: int) -> int:
        if value != AUTO_DURATION and not MIN_DURATION <= value <= MAX_DURATION:
            raise ValueError(f"duration must be an integer from 4 to 15, or -1; got {value}")
        return value

    @field_validator("prompt")
    @classmethod
    def _prompt_has_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("prompt must describe the video: it is empty or only whitespace")
        return value

    @field_validator("image_urls", "video_urls", "audio_urls")
    @classmethod
    def _reference_urls(cls, urls: list[str]) -> list[str]:
        for position, url in enumerate(urls):
            problem = None if is_asset_url(url) else url_problem(url)
            if problem:
                raise ValueError(f"item {position} ({url[:80]!r}) {problem}")
        return urls

    @field_validator("callback_url")
    @classmethod
    def _callback_url(cls, url: str | None) -> str | None:
        problem = url_problem(url) if url is not None else None
        if problem:
            raise ValueError(problem)
        return url


class TaskError(BaseModel):
    """Why a task failed, and what to change."""

    code: str
    message: str


class StoryboardShot(BaseModel):
    """One shot of a finished video: when, what, and how the camera moves."""

    start: float = Field(description="Seconds into the video where the shot takes over.")
    end: float = Field(description="Seconds where the next shot takes over, or the video ends.")
    shows: str = Field(
        description="The reference shown (`@Image1`, `@Video2`), or, when the picture is "
        "drawn from the prompt alone, what was drawn: `the words: a sea at dawn`, or `the "
        "words: an abstract scene` when the prompt names no place that can be drawn.",
        examples=["@Image1"],
    )
    camera: str = Field(
        description="The camera move (`push_in`, `pan_left`, `drift`, `static`, ...), "
        "`follows @Video1` when a reference video's camera motion is replayed, or "
        "`the clip's own` for a video shown as filmed.",
        examples=["push_in"],
    )
    grade: str | None = Field(
        None,
        description="The colour grade, when one is applied: a look, a time of day, or both "
        "(`night`, `black_and_white night`).",
        examples=["golden_hour"],
    )
    weather: str | None = Field(
        None, description="`rain`, `snow` or `fog` over the shot; absent when clear."
    )
    words: str | None = Field(
        None,
        description="The prompt's words the shot was read from; absent for a picture the "
        "prompt never names.",
    )
    clip_from: float | None = Field(None, description="Video shots: the source second shown first.")
    clip_to: float | None = Field(None, description="Video shots: the source second shown last.")
    clip_speed: float | None = Field(
        None,
        description="Video shots: the clip's speed, 1 as filmed (0.5: slow motion); a "
        "retimed clip's frames are blended and its sound keeps its pitch.",
    )


class StoryboardSound(BaseModel):
    """One sound cue of a finished video."""

    plays: str = Field(
        description="`@Audio1`, `@Video2` (that clip's own sound), or `score` (music "
        "synthesized for the video).",
        examples=["@Audio1"],
    )
    start: float = Field(description="Seconds into the video where it starts.")
    end: float = Field(description="Seconds where it stops.")
    role: Literal["background", "narration", "clip"] = Field(
        description="`background` spans the video under everything else, `narration` is "
        "speech played once, `clip` starts under one shot."
    )
    loops: bool = Field(False, description="Whether it repeats to fill its time.")


class Storyboard(BaseModel):
    """What a finished video holds, shot by shot, and what it sounds like."""

    shots: list[StoryboardShot]
    sounds: list[StoryboardSound] = Field(default_factory=list)


class TaskInfo(BaseModel):
    """Details of a task beyond its status."""

    can_cancel: bool = Field(description="True while the task is pending or processing.")
    estimated_time: int = Field(description="Estimated seconds from creation to completion.")
    video_duration: int = Field(description="Seconds of video; -1 until the engine decides.")
    seed: int = Field(description="The seed used (drawn at creation when -1 was sent).")
    storyboard: Storyboard | None = Field(
        None,
        description="A completed task's shots and sound cues, from an engine that plans "
        "them (the compositor); absent otherwise.",
        json_schema_extra=EXTENSION,
    )
    warnings: list[str] | None = Field(
        None,
        description="What the engine could not honour, or decided on its own, and why "
        "(`@Video1 was trimmed from 8.0 s to 3.2 s`); absent when there is nothing to say.",
        json_schema_extra=EXTENSION,
    )


class Usage(BaseModel):
    """What the task is billed by."""

    billing_rule: str = "per_second"
    credits_reserved: int
    user_group: str = "default"
    upstream: dict[str, Any] | None = Field(
        None,
        description="For a model served by an upstream, the upstream's own usage of the "
        "task (e.g. Ark's `completion_tokens`), once it reports one.",
        json_schema_extra=EXTENSION,
    )


class TaskObject(BaseModel):
    """The task as `GET /v1/tasks/{task_id}` returns it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": _EXAMPLE_TASK_ID,
                    "object": "video.generation.task",
                    "created": 1757165031,
                    "model": STANDARD_MODEL,
                    "type": "video",
                    "status": "completed",
                    "progress": 100,
                    "results": [_EXAMPLE_RESULT],
                    "task_info": {
                        "can_cancel": False,
                        "estimated_time": 40,
                        "video_duration": 5,
                        "seed": 1234,
                    },
                    "usage": {
                        "billing_rule": "per_second",
                        "credits_reserved": 5,
                        "user_group": "default",
                    },
                }
            ]
        }
    )

    id: str = Field(examples=[_EXAMPLE_TASK_ID])
    object: Literal["video.generation.task"] = "video.generation.task"
    created: int = Field(description="Unix seconds of creation.", examples=[1757165031])
    model: str = Field(examples=[STANDARD_MODEL])
    type: Literal["video"] = "video"
    status: TaskStatus
    progress: int = Field(ge=0, le=100, description="0-100, rising monotonically.")
    results: list[str] | None = Field(
        None,
        description="Signed download URLs, present only when completed.",
        examples=[[_EXAMPLE_RESULT]],
    )
    error: TaskError | None = Field(None, description="Present only when failed.")
    task_info: TaskInfo
    usage: Usage


class TaskList(BaseModel):
    """A page of `GET /v1/tasks`, newest first; pass `last_id` as `after` for the next."""

    model_config = ConfigDict(json_schema_extra=EXTENSION)

    object: Literal["list"] = "list"
    data: list[TaskObject]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None


class ErrorDetail(BaseModel):
    code: str
    message: str
    type: str
    param: str | None = None


class ErrorBody(BaseModel):
    """The envelope of every HTTP error."""

    error: ErrorDetail


def url_problem(url: str) -> str | None:
    """What is wrong with a reference or callback URL as written, or None when it may be tried.

    Only the form is judged here; whether the host may be reached is the fetcher's decision.
    """
    if len(url) > MAX_URL_CHARS:
        return f"is longer than {MAX_URL_CHARS} characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "must be an http:// or https:// URL"
    if not parts.hostname:
        return "has no host"
    return None


class FileObject(BaseModel):
    """An uploaded reference, as `POST /v1/files` returns it."""

    model_config = ConfigDict(json_schema_extra=EXTENSION)

    id: str = Field(examples=["file-3k9x2m7q1w8e5r4t6y0u2i9o"])
    object: Literal["file"] = "file"
    url: str = Field(
        description="Put this in image_urls, video_urls or audio_urls (same key).",
        examples=["https://r2v.example.com/v1/files/file-3k9x2m7q1w8e5r4t6y0u2i9o/content"],
    )
    bytes: int
    filename: str | None = None
    kind: ReferenceKind = Field(description="What the bytes are: image, video or audio.")
    created_at: int
    expires_at: int = Field(description="Unix seconds after which the file is deleted.")


_ASSET_URL = re.compile(r"^asset://[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def is_asset_url(url: str) -> bool:
    """Whether `url` names an item of Ark's asset library (`asset://<id>`): such references
    are passed to an upstream untouched, never fetched."""
    return bool(_ASSET_URL.match(url))


def uploaded_file_id(url: str) -> str | None:
    """The file id when `url` names a file uploaded to r2v, else None."""
    match = _FILE_URL_PATH.search(urlsplit(url).path)
    return match.group(1) if match else None


def is_task_id(value: str) -> bool:
    """Whether `value` has the `task-unified-<unix seconds>-<8 lowercase alphanumerics>` form."""
    return bool(TASK_ID_PATTERN.match(value))
