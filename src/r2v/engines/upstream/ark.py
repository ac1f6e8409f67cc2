"""The Ark dialect: BytePlus ModelArk and Volcengine Ark content-generation tasks.

    POST   {url}/contents/generations/tasks        {"model", "content": [...], ...} → {"id"}
    GET    {url}/contents/generations/tasks/{id}   the task object
    DELETE {url}/contents/generations/tasks/{id}   cancels a queued task → {}

Every media item carries an explicit `role`: Ark reads a role-less image as a first frame
and refuses it beside a reference video. Items go text, images, videos, audios, each kind in
the request's order, so Ark numbers them as the prompt does; a pinned image is sent as
`first_frame` or `last_frame` in its place (one pinned at both ends twice: as the first frame
in its place, and as the last frame after the other images). Ark's own fields only are sent.
"""

from __future__ import annotations

from typing import Any

from r2v.engines.upstream.request import (
    Call,
    Malformed,
    UpstreamRequest,
    UpstreamState,
    UpstreamStatus,
    UpstreamTarget,
    clean_usage,
    error_fields,
    rewrite_mentions,
    task_ref,
)
from r2v.errors import (
    ContentPolicyViolation,
    GenerationFailed,
    GenerationTimeout,
    ParametersRefused,
    TaskFailure,
    UpstreamUnavailable,
)

_TASKS = "/contents/generations/tasks"
_STATES: dict[str, UpstreamState] = {
    "queued": "queued",
    "running": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": "failed",
    "expired": "failed",
}
_OPERATOR_ERRORS = frozenset(
    {"AuthenticationError", "AccessDenied", "AccountOverdueError", "ModelNotOpen"}
)


def ark_failure(code: str, message: str, *, refused: bool = False) -> TaskFailure:
    """The task failure an Ark error code stands for, naming Ark's code and message."""
    what = "refused" if refused else "failed"
    detail = f"{code}: {message}" if message else code
    text = f"Ark {what} the task ({detail})"
    if "SensitiveContent" in code or "RiskDetection" in code:
        return ContentPolicyViolation(text + ": change the prompt or the references")
    if code == "ContentSecurityDetectionError":
        return ContentPolicyViolation(text + ": change the prompt or the references")
    if code.startswith("InvalidParameter") or code == "MissingParameter":
        return ParametersRefused(text)
    if code in _OPERATOR_ERRORS or code.startswith("InvalidEndpointOrModel"):
        return UpstreamUnavailable(
            text + ": the server's upstream account or model is not usable; tell its operator"
        )
    return GenerationFailed(text)


def _item(kind: str, url: str, role: str) -> dict[str, Any]:
    return {"type": f"{kind}_url", f"{kind}_url": {"url": url}, "role": role}


def _image_roles(request: UpstreamRequest) -> list[tuple[str, str]]:
    """(url, role) of each image item: the pinned ones as frames, the rest as references."""
    first, last = request.first_frame_image, request.last_frame_image
    items: list[tuple[str, str]] = []
    for number, url in enumerate(request.image_urls, start=1):
        role = "reference_image"
        if number == first:
            role = "first_frame"
        elif number == last:
            role = "last_frame"
        items.append((url, role))
    if first is not None and first == last:
        items.append((request.image_urls[last - 1], "last_frame"))
    return items


class ArkDialect:
    """`Dialect` of Ark's content-generation task API."""

    def create(self, target: UpstreamTarget, request: UpstreamRequest) -> Call:
        prompt = rewrite_mentions(request.prompt) if target.rewrite_mentions else request.prompt
        content: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
        content += [_item("image", url, role) for url, role in _image_roles(request)]
        for kind, urls in (("video", request.video_urls), ("audio", request.audio_urls)):
            content += [_item(kind, url, f"reference_{kind}") for url in urls]
        body: dict[str, Any] = {
            "model": target.model,
            "content": content,
            "resolution": request.resolution,
            "ratio": request.aspect_ratio,
            "duration": request.duration,
            "generate_audio": request.generate_audio,
            "watermark": False,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        if request.callback_url is not None:
            body["callback_url"] = request.callback_url
        if request.return_last_frame:
            body["return_last_frame"] = True
        return Call("POST", target.url + _TASKS, body)

    def created(self, data: Any) -> str:
        return task_ref(data.get("id") if isinstance(data, dict) else None)

    def read(self, target: UpstreamTarget, ref: str) -> Call:
        return Call("GET", f"{target.url}{_TASKS}/{ref}")

    def cancel(self, target: UpstreamTarget, ref: str) -> Call:
        return Call("DELETE", f"{target.url}{_TASKS}/{ref}")

    def status(self, target: UpstreamTarget, data: Any) -> UpstreamStatus:
        if not isinstance(data, dict) or data.get("status") not in _STATES:
            raise Malformed("Ark's answer is not a task object with a known status")
        status = str(data["status"])
        secret = target.api_key
        seed = data.get("seed")
        seed = seed if isinstance(seed, int) and 0 <= seed < 2**32 else None
        usage = clean_usage(data.get("usage"), secret)
        if status == "succeeded":
            content = data.get("content")
            video_url = content.get("video_url") if isinstance(content, dict) else None
            if not isinstance(video_url, str) or not video_url:
                raise Malformed("Ark says the task succeeded but gives no content.video_url")
            return UpstreamStatus("succeeded", video_url=video_url, usage=usage, seed=seed)
        if status == "failed":
            code, message = error_fields(data, secret)
            failure = ark_failure(code or "unknown", message)
            return UpstreamStatus("failed", failure=failure, usage=usage)
        if status == "expired":
            return UpstreamStatus(
                "failed",
                failure=GenerationTimeout(
                    "Ark expired the task before it finished (its queue was too long): "
                    "create it again later"
                ),
            )
        if status == "cancelled":
            return UpstreamStatus(
                "failed", failure=GenerationFailed("the task was cancelled on Ark's side")
            )
        return UpstreamStatus(_STATES[status], seed=seed)

    def refusal(self, target: UpstreamTarget, status_code: int, data: Any) -> TaskFailure:
        code, message = error_fields(data, target.api_key)
        if not code:
            code = {401: "AuthenticationError", 403: "AccessDenied"}.get(
                status_code, f"HTTP {status_code}"
            )
        failure = ark_failure(code, message, refused=True)
        if status_code in (401, 403, 404) and type(failure) is GenerationFailed:
            return UpstreamUnavailable(failure.message)
        return failure
