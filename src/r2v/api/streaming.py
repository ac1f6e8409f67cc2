"""Holding a response for a task: `Prefer: wait=N` and the Server-Sent Events stream.

Both poll the task through the service in a worker thread, so the event loop never blocks
and no thread is held while a client waits.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.concurrency import run_in_threadpool

from r2v.errors import RateLimited
from r2v.protocol import TaskObject

MAX_WAIT_SECONDS = 60
POLL_SECONDS = 0.25
_PREFER_WAIT = re.compile(r"(?:^|[;,\s])wait\s*=\s*([0-9]+)", re.IGNORECASE)


def prefer_wait(prefer: str | None) -> int | None:
    """The seconds a `Prefer: wait=N` header asks for (at most 60), or None."""
    match = _PREFER_WAIT.search(prefer or "")
    if match is None:
        return None
    digits = match.group(1)  # any length: 5000 digits are still "the most"
    return MAX_WAIT_SECONDS if len(digits) > 3 else min(int(digits), MAX_WAIT_SECONDS)


class StreamSlots:
    """The event streams each key holds open in this process, against a cap per key."""

    def __init__(self, per_key: int) -> None:
        self._per_key = per_key
        self._open: dict[str, int] = {}

    def take(self, key_id: str) -> None:
        """Count one more open stream for the key; `RateLimited` when it has its cap."""
        if self._open.get(key_id, 0) >= self._per_key:
            raise RateLimited(
                f"this API key has {self._per_key} event streams open, its limit: close one "
                "(or poll GET /v1/tasks/{id}) before opening another",
                retry_after=5,
            )
        self._open[key_id] = self._open.get(key_id, 0) + 1

    def give_back(self, key_id: str) -> None:
        """The key's stream ended."""
        left = self._open.get(key_id, 0) - 1
        if left > 0:
            self._open[key_id] = left
        else:
            self._open.pop(key_id, None)

    async def held(self, key_id: str, events: AsyncIterator[str]) -> AsyncIterator[str]:
        """`events`, giving the key's slot back however the stream ends."""
        try:
            async for event in events:
                yield event
        finally:
            self.give_back(key_id)


async def wait_terminal(
    task: TaskObject, fetch: Callable[[], TaskObject], seconds: float
) -> TaskObject:
    """The task once terminal, or as it is after `seconds`."""
    deadline = time.monotonic() + seconds
    while not task.status.terminal and time.monotonic() < deadline:
        await asyncio.sleep(POLL_SECONDS)
        task = await run_in_threadpool(fetch)
    return task


def _event(task: TaskObject, number: int) -> str:
    data = task.model_dump_json(exclude_none=True)
    return f"id: {number}\nevent: task\ndata: {data}\n\n"


async def task_events(
    fetch: Callable[[], TaskObject],
    disconnected: Callable[[], Awaitable[bool]],
    keepalive_seconds: float,
) -> AsyncIterator[str]:
    """SSE: the task now, then each change of status and each rise of progress, until it
    is terminal. Progress never goes backwards on the stream (nor in the store).

    A comment line keeps idle connections open every `keepalive_seconds`.
    """
    task = await run_in_threadpool(fetch)
    number = 1
    yield "retry: 2000\n\n" + _event(task, number)
    last_sent = time.monotonic()
    while not task.status.terminal:
        await asyncio.sleep(POLL_SECONDS)
        if await disconnected():
            return
        current = await run_in_threadpool(fetch)
        if current.progress < task.progress:  # the store never lowers it; nor does the stream
            current = current.model_copy(update={"progress": task.progress})
        if (current.status, current.progress) != (task.status, task.progress):
            task = current
            number += 1
            yield _event(task, number)
            last_sent = time.monotonic()
        elif time.monotonic() - last_sent >= keepalive_seconds:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
