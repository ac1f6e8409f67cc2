"""The unified dialect: any server of r2v's own API (an aggregator, or another r2v).

    POST   {url}/v1/videos/generations   the request body r2v itself takes → the task object
    GET    {url}/v1/tasks/{id}           the task object
    DELETE {url}/v1/tasks/{id}           cancels it

Creates carry `Idempotency-Key: <r2v's task id>`, so a create sent again (after a crash, or
a timeout) finds the upstream task made the first time wherever the upstream honours it.
"""

from __future__ import annotations

from typing import Any

from r2v.engines.upstream.request import (
    Call,
    Malformed,
    UpstreamRequest,
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
    ReferenceFetchFailed,
    ReferenceInvalid,
    TaskFailure,
    UpstreamUnavailable,
)

# The upstream's task error codes that mean the same here; any other is generation_failed.
_SAME_MEANING: dict[str, type[TaskFailure]] = {
    "content_policy_violation": ContentPolicyViolation,
    "invalid_parameters": ParametersRefused,
    "reference_fetch_failed": ReferenceFetchFailed,
    "reference_invalid": ReferenceInvalid,
    "generation_timeout": GenerationTimeout,
    "upstream_unavailable": UpstreamUnavailable,
}


def unified_failure(code: str, message: str, *, refused: bool = False) -> TaskFailure:
    """The task failure an upstream error code stands for, naming its code and message."""
    what = "refused" if refused else "failed"
    text = f"the upstream server {what} the task ({code}: {message})"
    return _SAME_MEANING.get(code, GenerationFailed)(text)


class UnifiedDialect:
    """`Dialect` of the unified task API (shared/API.md)."""

    def create(self, target: UpstreamTarget, request: UpstreamRequest) -> Call:
        prompt = rewrite_mentions(request.prompt) if target.rewrite_mentions else request.prompt
        body: dict[str, Any] = {
            "model": target.model,
            "prompt": prompt,
            "resolution": request.resolution,
            "aspect_ratio": request.aspect_ratio,
            "duration": request.duration,
            "generate_audio": request.generate_audio,
            "seed": -1 if request.seed is None else request.seed,
            "image_urls": list(request.image_urls),
            "video_urls": list(request.video_urls),
            "audio_urls": list(request.audio_urls),
        }
        # Extensions go only when used, so an upstream that predates them reads the same body.
        if request.first_frame_image is not None:
            body["first_frame_image"] = request.first_frame_image
        if request.last_frame_image is not None:
            body["last_frame_image"] = request.last_frame_image
        if request.return_last_frame:
            body["return_last_frame"] = True
        return Call(
            "POST",
            target.url + "/v1/videos/generations",
            body,
            {"Idempotency-Key": request.task_id},
        )

    def created(self, data: Any) -> str:
        return task_ref(data.get("id") if isinstance(data, dict) else None)

    def read(self, target: UpstreamTarget, ref: str) -> Call:
        return Call("GET", f"{target.url}/v1/tasks/{ref}")

    def cancel(self, target: UpstreamTarget, ref: str) -> Call:
        return Call("DELETE", f"{target.url}/v1/tasks/{ref}")

    def status(self, target: UpstreamTarget, data: Any) -> UpstreamStatus:
        if not isinstance(data, dict):
            raise Malformed("the upstream's answer is not a task object")
        status = data.get("status")
        secret = target.api_key
        info = data.get("task_info")
        seed = info.get("seed") if isinstance(info, dict) else None
        seed = seed if isinstance(seed, int) and 0 <= seed < 2**32 else None
        usage = clean_usage(data.get("usage"), secret)
        if status == "pending":
            return UpstreamStatus("queued", seed=seed)
        if status == "processing":
            progress = data.get("progress")
            known = isinstance(progress, int) and 0 <= progress <= 100
            return UpstreamStatus("running", progress=progress if known else None, seed=seed)
        if status == "completed":
            results = data.get("results")
            video_url = results[0] if isinstance(results, list) and results else None
            if not isinstance(video_url, str) or not video_url:
                raise Malformed("the upstream says the task completed but gives no results")
            return UpstreamStatus("succeeded", video_url=video_url, usage=usage, seed=seed)
        if status == "failed":
            code, message = error_fields(data, secret)
            return UpstreamStatus(
                "failed", failure=unified_failure(code or "unknown_error", message), usage=usage
            )
        raise Malformed("the upstream's answer has no known status")

    def refusal(self, target: UpstreamTarget, status_code: int, data: Any) -> TaskFailure:
        code, message = error_fields(data, target.api_key)
        text = f"the upstream server refused the task (HTTP {status_code}"
        text += f", {code}: {message})" if code else ")"
        if status_code in (401, 403, 404):
            return UpstreamUnavailable(
                text + ": the server's upstream account or model is not usable; tell its operator"
            )
        if status_code in (400, 413, 422):
            return _SAME_MEANING.get(code, ParametersRefused)(text)
        return GenerationFailed(text)
