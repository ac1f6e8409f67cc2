"""What the upstream engine sends and hears back, independent of the upstream's dialect.

`UpstreamTarget` is one configured upstream (its key kept out of every repr), an
`UpstreamRequest` is a task as it goes upstream, and an `UpstreamStatus` is what the upstream
says of it. Everything an upstream sends back is untrusted text: `clean_message` and
`clean_usage` bound it and scrub the key from it before it can reach a task object or a log.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from r2v.errors import TaskFailure
from r2v.grammar import find_mentions
from r2v.protocol import AspectRatio, Resolution

UpstreamApi = Literal["ark", "unified"]
UpstreamState = Literal["queued", "running", "succeeded", "failed"]

MAX_MESSAGE_CHARS = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")


@dataclass(frozen=True)
class UpstreamTarget:
    """One upstream a model may be sent to: its dialect, base URL, model id and key."""

    api: UpstreamApi
    url: str
    """Base URL without a trailing slash (Ark's ends in `/api/v3`)."""
    model: str
    api_key: str = field(repr=False)
    rewrite_mentions: bool = False

    @property
    def identity(self) -> str:
        """What a task row stores to find this upstream again (never the key)."""
        return f"{self.api} {self.url} {self.model}"

    @property
    def label(self) -> str:
        """A short name for logs and metrics: the dialect and the host."""
        return f"{self.api}:{urlsplit(self.url).hostname or '?'}"

    @property
    def name(self) -> str:
        """How messages to users name this upstream."""
        return "Ark" if self.api == "ark" else "the upstream server"


@dataclass(frozen=True)
class UpstreamRequest:
    """One task as it is sent upstream; `seed` None lets the upstream draw one."""

    task_id: str
    model: str
    prompt: str
    resolution: Resolution
    aspect_ratio: AspectRatio
    duration: int
    generate_audio: bool
    seed: int | None
    image_urls: tuple[str, ...] = ()
    video_urls: tuple[str, ...] = ()
    audio_urls: tuple[str, ...] = ()
    callback_url: str | None = None
    """Where the upstream may call r2v back (Ark only); never the client's own callback."""
    first_frame_image: int | None = None
    """The image (1-based, in `image_urls`) the video must open on, exactly; None: no pin."""
    last_frame_image: int | None = None
    """The image (1-based, in `image_urls`) the video must end on, exactly; None: no pin."""
    return_last_frame: bool = False
    """Ask the upstream for a picture of the video's last frame too."""


@dataclass(frozen=True)
class UpstreamStatus:
    """An upstream's answer about one task, in r2v's terms."""

    state: UpstreamState
    progress: int | None = None
    """The upstream's own 0-100, when it reports one."""
    video_url: str | None = None
    failure: TaskFailure | None = None
    usage: dict[str, Any] | None = None
    seed: int | None = None
    poll_after: float | None = None
    """Seconds the upstream asked to wait before the next poll."""


class Malformed(Exception):
    """An upstream answered something that is not what its API promises."""


def task_ref(value: object) -> str:
    """An upstream task id, checked to be safe in a URL path and in a database column."""
    if not isinstance(value, str) or not _REF.match(value):
        raise Malformed("the upstream's answer has no usable task id")
    return value


def error_fields(data: Any, secret: str) -> tuple[str, str]:
    """(code, message) of an answer's `{"error": {...}}`, cleaned; empty when it has none."""
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return "", ""
    return (
        clean_message(error.get("code") or "", secret),
        clean_message(error.get("message") or "", secret),
    )


def clean_message(text: object, secret: str) -> str:
    """Upstream text made fit for a task error: one line, bounded, and never the key."""
    message = str(text) if text is not None else ""
    if secret:
        message = message.replace(secret, "[redacted]")
    message = _CONTROL.sub(" ", message).strip()
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    return message


def clean_usage(value: object, secret: str) -> dict[str, Any] | None:
    """The scalar fields of an upstream's usage object (at most 16), or None."""
    if not isinstance(value, dict):
        return None
    usage: dict[str, Any] = {}
    for key, item in list(value.items())[:16]:
        if not isinstance(key, str) or not 0 < len(key) <= 64:
            continue
        if isinstance(item, bool) or (isinstance(item, int) and abs(item) < 2**53):
            usage[key] = item
        elif isinstance(item, float) and math.isfinite(item):
            usage[key] = item
        elif isinstance(item, str):
            usage[key] = clean_message(item, secret)[:100]
    return usage or None


def poll_hint(headers: dict[str, str]) -> float | None:
    """Seconds an upstream asked to wait (`openai-poll-after-ms`, else `Retry-After`)."""
    millis = headers.get("openai-poll-after-ms", "")
    if millis.isdigit():
        return min(int(millis) / 1000, 300.0)
    seconds = headers.get("retry-after", "")
    if seconds.isdigit():
        return min(float(seconds), 300.0)
    return None


def rewrite_mentions(prompt: str) -> str:
    """`@Image1` as `Image 1` (`图片1` in a Chinese prompt), for upstreams that want words."""
    chinese = bool(_CJK.search(prompt))
    words = {"image": "图片", "video": "视频", "audio": "音频"} if chinese else None
    rewritten = prompt
    for mention in reversed(find_mentions(prompt)):
        if words is not None:
            word = f"{words[mention.kind]}{mention.index}"
        else:
            word = f"{mention.kind.capitalize()} {mention.index}"
        rewritten = rewritten[: mention.start] + word + rewritten[mention.end :]
    return rewritten


@dataclass(frozen=True)
class Call:
    """One HTTP request to an upstream (the client adds the key)."""

    method: Literal["GET", "POST", "DELETE"]
    url: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Dialect(Protocol):
    """How one kind of upstream API spells creating, reading and cancelling a task."""

    def create(self, target: UpstreamTarget, request: UpstreamRequest) -> Call:
        """The request that creates the task upstream."""
        ...

    def created(self, data: Any) -> str:
        """The upstream task id in a create's answer; raises `Malformed`."""
        ...

    def read(self, target: UpstreamTarget, ref: str) -> Call:
        """The request that reads the task."""
        ...

    def status(self, target: UpstreamTarget, data: Any) -> UpstreamStatus:
        """What a read's answer says; raises `Malformed`."""
        ...

    def cancel(self, target: UpstreamTarget, ref: str) -> Call:
        """The request that cancels the task."""
        ...

    def refusal(self, target: UpstreamTarget, status_code: int, data: Any) -> TaskFailure:
        """The task failure a request refused for good (a 4xx) stands for."""
        ...
