"""`Client` and `AsyncClient`: the same calls, blocking and async, over httpx.

    client = Client("http://127.0.0.1:8000", api_key="r2v_...")
    task = client.videos.create(model=FAST_MODEL, prompt="@Image1 at dusk", image_urls=[url])
    done = client.tasks.wait(task.id)
    client.download(done, "out.mp4")

`R2V_BASE_URL` and `R2V_API_KEY` are read from the environment when not given.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import httpx

from r2v.client.errors import (
    ERROR_OF_STATUS,
    APIError,
    InternalServerError,
    TaskFailedError,
    WaitTimeout,
)
from r2v.protocol import CreateVideoRequest, TaskObject, TaskStatus

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_POLL_SECONDS = 2.0


def _config(base_url: str | None, api_key: str | None) -> tuple[str, dict[str, str]]:
    url = base_url or os.environ.get("R2V_BASE_URL") or DEFAULT_BASE_URL
    key = api_key or os.environ.get("R2V_API_KEY")
    if not key:
        raise ValueError("an API key is needed: pass api_key= or set R2V_API_KEY")
    return url.rstrip("/"), {"Authorization": f"Bearer {key}"}


def _raise_for_error(response: httpx.Response) -> None:
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


def _create_body(fields: dict[str, Any]) -> dict[str, Any]:
    # validate locally first: a mistake is reported before anything is sent
    return CreateVideoRequest(**fields).model_dump(exclude_none=True)


def _parse_task(response: httpx.Response) -> TaskObject:
    _raise_for_error(response)
    return TaskObject.model_validate(response.json())


def _poll_delay(response_headers: httpx.Headers) -> float:
    hint = response_headers.get("openai-poll-after-ms")
    return int(hint) / 1000 if hint and hint.isdigit() else DEFAULT_POLL_SECONDS


def _finished(task: TaskObject) -> TaskObject | None:
    if task.status is TaskStatus.COMPLETED:
        return task
    if task.status is TaskStatus.FAILED:
        raise TaskFailedError(task)
    return None


class Client:
    """A blocking client of an r2v server."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url, headers = _config(base_url, api_key)
        self._http = httpx.Client(
            base_url=url, headers=headers, timeout=timeout, transport=transport
        )
        self.videos = _Videos(self)
        self.tasks = _Tasks(self)

    def download(self, task: TaskObject, path: str | Path) -> Path:
        """Save a completed task's video to `path`."""
        if not task.results:
            raise ValueError(f"task {task.id} has no result yet (status {task.status})")
        target = Path(path)
        with self._http.stream("GET", task.results[0]) as response:
            _raise_for_error(response)
            with target.open("wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
        return target

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class _Videos:
    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, **fields: Any) -> TaskObject:
        """Create a task; fields as `POST /v1/videos/generations` takes them."""
        response = self._client._http.post("/v1/videos/generations", json=_create_body(fields))
        return _parse_task(response)


class _Tasks:
    def __init__(self, client: Client) -> None:
        self._client = client

    def retrieve(self, task_id: str) -> TaskObject:
        """The task as it is now."""
        return _parse_task(self._client._http.get(f"/v1/tasks/{task_id}"))

    def wait(self, task_id: str, timeout: float = 1800.0) -> TaskObject:
        """Poll until completed (returned) or failed (`TaskFailedError`), honouring hints."""
        deadline = time.monotonic() + timeout
        while True:
            response = self._client._http.get(f"/v1/tasks/{task_id}")
            task = _parse_task(response)
            if (done := _finished(task)) is not None:
                return done
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"task {task_id} still {task.status} after {timeout:.0f} s")
            time.sleep(_poll_delay(response.headers))


class AsyncClient:
    """The async twin of `Client`."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        url, headers = _config(base_url, api_key)
        self._http = httpx.AsyncClient(
            base_url=url, headers=headers, timeout=timeout, transport=transport
        )
        self.videos = _AsyncVideos(self)
        self.tasks = _AsyncTasks(self)

    async def download(self, task: TaskObject, path: str | Path) -> Path:
        """Save a completed task's video to `path`."""
        if not task.results:
            raise ValueError(f"task {task.id} has no result yet (status {task.status})")
        target = Path(path)
        async with self._http.stream("GET", task.results[0]) as response:
            _raise_for_error(response)
            chunks = [chunk async for chunk in response.aiter_bytes()]
        await asyncio.to_thread(target.write_bytes, b"".join(chunks))
        return target

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()


class _AsyncVideos:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(self, **fields: Any) -> TaskObject:
        """Create a task; fields as `POST /v1/videos/generations` takes them."""
        body = _create_body(fields)
        return _parse_task(await self._client._http.post("/v1/videos/generations", json=body))


class _AsyncTasks:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def retrieve(self, task_id: str) -> TaskObject:
        """The task as it is now."""
        return _parse_task(await self._client._http.get(f"/v1/tasks/{task_id}"))

    # the same signature as the blocking twin's: a deadline on polling, not on one call
    async def wait(self, task_id: str, timeout: float = 1800.0) -> TaskObject:  # noqa: ASYNC109
        """Poll until completed (returned) or failed (`TaskFailedError`), honouring hints."""
        deadline = time.monotonic() + timeout
        while True:
            response = await self._client._http.get(f"/v1/tasks/{task_id}")
            task = _parse_task(response)
            if (done := _finished(task)) is not None:
                return done
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"task {task_id} still {task.status} after {timeout:.0f} s")
            await asyncio.sleep(_poll_delay(response.headers))
