"""The task record (the domain's view of one task) and its state machine.

    pending ──claim──▶ processing ──complete──▶ completed
       ▲                  │  │
       └──lease expired───┘  └──fail / cancel / retries exhausted──▶ failed
    pending ──cancel──▶ failed

Only the owner of the current attempt writes progress or an outcome (fencing): every write
of a worker names the attempt it holds, and the store ignores a write whose attempt is stale.
"""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import dataclass
from functools import cached_property

from r2v.protocol import CreateVideoRequest, TaskStatus

_ID_ALPHABET = string.ascii_lowercase + string.digits

UPSTREAM_WAITING = ("preparing", "submitting", "queued")
"""Upstream states a client sees as `pending`: r2v is still checking the references or
sending the task, or the upstream has it queued. Once the upstream runs it: `running`."""


def new_task_id(now: float | None = None) -> str:
    """A fresh id of the `task-unified-<unix seconds>-<8 lowercase alphanumerics>` form."""
    stamp = int(time.time() if now is None else now)
    suffix = "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))
    return f"task-unified-{stamp}-{suffix}"


@dataclass(frozen=True)
class TaskRecord:
    """One task as the service and the workers see it."""

    id: str
    key_id: str
    model: str
    status: TaskStatus
    progress: int
    request_json: str
    """The request as created (JSON); `request` parses it when someone needs it."""
    seed: int
    """The concrete seed: drawn at creation when the request said -1."""
    video_duration: int
    """Seconds of video; -1 until the engine has decided for a `duration: -1` request."""
    estimated_time: int
    created_at: float
    updated_at: float
    attempt: int = 0
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    result_key: str | None = None
    result_expires_at: float | None = None
    finished_at: float | None = None
    callback_url: str | None = None
    """Where the finished task is POSTed (Standard Webhooks), if anywhere."""
    base_url: str | None = None
    """The server's URL as the client reached it at creation, for links sent by webhook."""
    upstream_state: str | None = None
    """Upstream engine only: `preparing`, `submitting`, `queued` or `running`."""
    upstream_target: str | None = None
    """Which configured upstream the task was sent to (its identity, never its key)."""
    upstream_ref: str | None = None
    """The upstream's own id of the task, stored before r2v waits on it."""
    upstream_since: float | None = None
    """When the task was (first) sent upstream: its time limit counts from here."""
    upstream_usage: str | None = None
    """The upstream's usage of the task, as JSON, once it reported one."""
    video_width: int | None = None
    """The finished video's width in pixels (None until completed)."""
    video_height: int | None = None
    remixed_from: str | None = None
    """The task this one was remixed from (`POST /v1/videos/{id}/remix`), if any."""
    render_summary: str | None = None
    """What the engine made of the request (its storyboard and warnings) as JSON, stored on
    completion by an engine that reports one."""

    @cached_property
    def request(self) -> CreateVideoRequest:
        """The validated request (parsed on first use: reading a task never needs it)."""
        return CreateVideoRequest.model_validate_json(self.request_json)

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    @property
    def wire_status(self) -> TaskStatus:
        """The status a client sees: an upstream task is `pending` until the upstream runs it."""
        if self.status is TaskStatus.PROCESSING and self.upstream_state in UPSTREAM_WAITING:
            return TaskStatus.PENDING
        return self.status

    @property
    def credits_reserved(self) -> int:
        # A -1 duration reserves the longest video it may become until the engine decides.
        return self.video_duration if self.video_duration > 0 else 15
