"""`Client`: the blocking SDK. `AsyncClient` (in `aio.py`) is its twin, call for call.

    from r2v.client import Client
    with Client("http://127.0.0.1:8000", api_key="r2v_...") as client:
        task = client.videos.generate("@Image1 at dusk", images=["photo.jpg"], output="out.mp4")

Requests that may succeed later (connection errors, 408, 429, 5xx) are retried with capped,
jittered backoff; a create carries an Idempotency-Key, so a retry never makes a second task.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from r2v.client.errors import APIConnectionError, WaitTimeout
from r2v.client.wire import (
    RETRY_STATUSES,
    RetryPolicy,
    SseParser,
    config,
    create_body,
    finished,
    idempotency_header,
    is_local,
    parse_task,
    partial_path,
    poll_delay,
    raise_for_error,
    result_url,
)
from r2v.protocol import (
    STANDARD_MODEL,
    AspectRatio,
    FileObject,
    Resolution,
    TaskList,
    TaskObject,
)

ProgressCallback = Callable[[TaskObject], None]


class Client:
    """A blocking client of an r2v server."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 2,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        url, headers = config(base_url, api_key)
        self._http = httpx.Client(
            base_url=url, headers=headers, timeout=timeout, transport=transport
        )
        self._retry = RetryPolicy(max_retries=max_retries)
        self._sleep = sleep
        self.videos = Videos(self)
        self.tasks = Tasks(self)
        self.files = Files(self)

    def request(
        self,
        method: str,
        path: str,
        *,
        upload: Path | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a request, retrying what may succeed later; the final response."""
        for retry in range(self._retry.max_retries + 1):
            try:
                if upload is not None:
                    with upload.open("rb") as handle:
                        response = self._http.request(
                            method, path, files={"file": (upload.name, handle)}, **kwargs
                        )
                else:
                    response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if retry == self._retry.max_retries:
                    raise APIConnectionError(f"{method} {path}: {exc}") from exc
                self._sleep(self._retry.delay(retry + 1))
                continue
            if response.status_code in RETRY_STATUSES and retry < self._retry.max_retries:
                self._sleep(self._retry.delay(retry + 1, response))
                continue
            return response
        raise AssertionError("unreachable")

    def download(self, task: TaskObject | str, path: str | Path) -> Path:
        """Save a completed task's video (or any result URL) to `path`, resuming on breaks.

        A link answered by a redirect (object storage) is followed; the API key is not sent
        to the other host.
        """
        url = task if isinstance(task, str) else result_url(task)
        target = Path(path)
        partial = partial_path(target)
        partial.unlink(missing_ok=True)
        for retry in range(self._retry.max_retries + 1):
            have = partial.stat().st_size if partial.exists() else 0
            headers = {"Range": f"bytes={have}-"} if have else {}
            try:
                with self._http.stream(
                    "GET", url, headers=headers, follow_redirects=True
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise_for_error(response)
                    mode = "ab" if have and response.status_code == 206 else "wb"
                    with partial.open(mode) as out:
                        for chunk in response.iter_bytes():
                            out.write(chunk)
                partial.replace(target)
                return target
            except httpx.TransportError as exc:
                if retry == self._retry.max_retries:
                    raise APIConnectionError(f"downloading {url}: {exc}") from exc
                self._sleep(self._retry.delay(retry + 1))
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class Videos:
    """`client.videos`: create tasks, or do the whole job in one call."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(
        self,
        *,
        model: str,
        prompt: str,
        resolution: Resolution | None = None,
        aspect_ratio: AspectRatio | None = None,
        duration: int | None = None,
        generate_audio: bool | None = None,
        seed: int | None = None,
        image_urls: Sequence[str] = (),
        video_urls: Sequence[str] = (),
        audio_urls: Sequence[str] = (),
        callback_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> TaskObject:
        """Create a task (fields as `POST /v1/videos/generations` takes them; None: default).

        The body is validated here first, so a mistake raises before anything is sent; a
        retry after a dropped connection reuses `idempotency_key` (one is made if not given).
        """
        fields = {
            "model": model,
            "prompt": prompt,
            "resolution": resolution,
            "aspect_ratio": aspect_ratio,
            "duration": duration,
            "generate_audio": generate_audio,
            "seed": seed,
            "image_urls": list(image_urls),
            "video_urls": list(video_urls),
            "audio_urls": list(audio_urls),
            "callback_url": callback_url,
        }
        response = self._client.request(
            "POST",
            "/v1/videos/generations",
            json=create_body(fields),
            headers=idempotency_header(idempotency_key),
        )
        return parse_task(response)

    def generate(
        self,
        prompt: str,
        *,
        model: str = STANDARD_MODEL,
        images: Sequence[str | Path] = (),
        videos: Sequence[str | Path] = (),
        audios: Sequence[str | Path] = (),
        output: str | Path | None = None,
        timeout: float = 1800.0,
        on_progress: ProgressCallback | None = None,
        resolution: Resolution | None = None,
        aspect_ratio: AspectRatio | None = None,
        duration: int | None = None,
        generate_audio: bool | None = None,
        seed: int | None = None,
        callback_url: str | None = None,
    ) -> TaskObject:
        """Upload local references, create the task, wait for it and download the video.

        References may be URLs or local paths; paths are uploaded first.
        """
        upload = self._client.files.url_of
        task = self.create(
            model=model,
            prompt=prompt,
            image_urls=[upload(item) for item in images],
            video_urls=[upload(item) for item in videos],
            audio_urls=[upload(item) for item in audios],
            resolution=resolution,
            aspect_ratio=aspect_ratio,
            duration=duration,
            generate_audio=generate_audio,
            seed=seed,
            callback_url=callback_url,
        )
        done = self._client.tasks.wait(task.id, timeout=timeout, on_progress=on_progress)
        if output is not None:
            self._client.download(done, output)
        return done


class Tasks:
    """`client.tasks`: read, list, cancel, wait for and stream tasks."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def retrieve(self, task_id: str) -> TaskObject:
        """The task as it is now."""
        return parse_task(self._client.request("GET", f"/v1/tasks/{task_id}"))

    def list(
        self, *, limit: int = 20, after: str | None = None, status: str | None = None
    ) -> TaskList:
        """A page of the key's tasks, newest first."""
        params = {k: v for k, v in {"limit": limit, "after": after, "status": status}.items() if v}
        response = self._client.request("GET", "/v1/tasks", params=params)
        raise_for_error(response)
        return TaskList.model_validate(response.json())

    def cancel(self, task_id: str) -> TaskObject:
        """Cancel a pending or processing task; it ends failed / request_cancelled."""
        return parse_task(self._client.request("DELETE", f"/v1/tasks/{task_id}"))

    def wait(
        self,
        task_id: str,
        timeout: float = 1800.0,
        on_progress: ProgressCallback | None = None,
    ) -> TaskObject:
        """Poll until completed (returned) or failed (`TaskFailedError`), as the server hints."""
        deadline = time.monotonic() + timeout
        while True:
            response = self._client.request("GET", f"/v1/tasks/{task_id}")
            task = parse_task(response)
            if on_progress is not None:
                on_progress(task)
            if (done := finished(task)) is not None:
                return done
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"task {task_id} still {task.status} after {timeout:.0f} s")
            self._client._sleep(poll_delay(response))

    def stream(self, task_id: str) -> Iterator[TaskObject]:
        """The task at each change of status or progress (Server-Sent Events) until it ends."""
        with self._client._http.stream(
            "GET", f"/v1/tasks/{task_id}/events", timeout=httpx.Timeout(60.0, read=None)
        ) as response:
            if response.status_code >= 400:
                response.read()
                raise_for_error(response)
            parser = SseParser()
            for line in response.iter_lines():
                if (task := parser.feed(line)) is not None:
                    yield task


class Files:
    """`client.files`: upload local references."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def upload(self, path: str | Path) -> FileObject:
        """Upload a local image, video or audio file; its `url` goes into a create."""
        response = self._client.request("POST", "/v1/files", upload=Path(path))
        raise_for_error(response)
        return FileObject.model_validate(response.json())

    def url_of(self, reference: str | Path) -> str:
        """A reference as a URL: uploaded first when it is a local path."""
        return self.upload(reference).url if is_local(reference) else str(reference)
