"""What both SDK twins share: configuration, request bodies, parsing, errors, retry policy."""

from __future__ import annotations

import json
import os
import random
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from r2v.client.errors import (
    ERROR_OF_STATUS,
    APIError,
    InternalServerError,
    TaskFailedError,
)
from r2v.protocol import CreateVideoRequest, TaskObject, TaskStatus

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_POLL_SECONDS = 2.0
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to retry a request that may succeed later, and how long to wait."""

    max_retries: int = 2
    base_seconds: float = 0.5
    max_seconds: float = 8.0

    def delay(self, retry: int, response: httpx.Response | None = None) -> float:
        """Seconds before retry number `retry` (1-based); honours a short Retry-After."""
        if response is not None:
            hint = response.headers.get("retry-after", "")
            if hint.isdigit() and int(hint) <= 60:
                return float(hint)
        backoff = min(self.max_seconds, self.base_seconds * 2.0 ** (retry - 1))
        return float(backoff * (0.75 + random.random() / 2))  # jitter, so clients do not march


def config(base_url: str | None, api_key: str | None) -> tuple[str, dict[str, str]]:
    """The base URL and auth header, from the arguments or R2V_BASE_URL / R2V_API_KEY."""
    url = base_url or os.environ.get("R2V_BASE_URL") or DEFAULT_BASE_URL
    key = api_key or os.environ.get("R2V_API_KEY")
    if not key:
        raise ValueError("an API key is needed: pass api_key= or set R2V_API_KEY")
    return url.rstrip("/"), {"Authorization": f"Bearer {key}"}


def create_body(fields: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of a create, validated locally first (mistakes caught before sending)."""
    return CreateVideoRequest(**fields).model_dump(mode="json", exclude_none=True)


def idempotency_header(given: str | None) -> dict[str, str]:
    """The Idempotency-Key header of a create: the caller's key, else a fresh one."""
    return {"Idempotency-Key": given or f"r2v-sdk-{uuid.uuid4()}"}


def raise_for_error(response: httpx.Response) -> None:
    """Raise the typed error of an error response (the body must have been read)."""
    if response.status_code < 400:
        return
    try:
        error = response.json()["error"]
        code, message = error["code"], error["message"]
        error_type, param = error.get("type", ""), error.get("param")
    except (ValueError, KeyError, TypeError):
        code, message, error_type, param = "http_error", response.text[:500], "", None
    cls = ERROR_OF_STATUS.get(response.status_code)
    if cls is None:
        cls = InternalServerError if response.status_code >= 500 else APIError
    raise cls(response.status_code, code, message, error_type, param)


def parse_task(response: httpx.Response) -> TaskObject:
    raise_for_error(response)
    return TaskObject.model_validate(response.json())


def poll_delay(response: httpx.Response) -> float:
    """The server's poll hint in seconds, else the default."""
    hint = response.headers.get("openai-poll-after-ms", "")
    return int(hint) / 1000 if hint.isdigit() else DEFAULT_POLL_SECONDS


def finished(task: TaskObject) -> TaskObject | None:
    """The task when completed; raises TaskFailedError when failed; None while running."""
    if task.status is TaskStatus.COMPLETED:
        return task
    if task.status is TaskStatus.FAILED:
        raise TaskFailedError(task)
    return None


class SseParser:
    """Reads Server-Sent Events line by line; an event's `data:` lines make one task."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> TaskObject | None:
        """The task an event carries, once its closing blank line arrives."""
        if line.startswith("data:"):
            self._data.append(line[5:].lstrip())
        elif not line and self._data:
            task = TaskObject.model_validate(json.loads("\n".join(self._data)))
            self._data = []
            return task
        return None


def result_url(task: TaskObject) -> str:
    """A completed task's download link."""
    if not task.results:
        raise ValueError(f"task {task.id} has no result yet (status {task.status})")
    return task.results[0]


def is_local(reference: str | Path) -> bool:
    """Whether a reference is a local path to upload rather than a URL to pass on."""
    text = str(reference)
    return not text.startswith(("http://", "https://"))


def partial_path(target: Path) -> Path:
    return target.with_name(target.name + ".part")
