"""The SDK's base against a real uvicorn: create, wait, download, typed errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pydantic
import pytest

from r2v.client import (
    FAST_MODEL,
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    Client,
    NotFoundError,
    TaskFailedError,
)
from tests.conftest import LiveServer
from tests.mediafiles import decode_summary
from tests.refserver import RefServer


def test_sync_client_creates_waits_and_downloads(
    live_server: LiveServer, key: str, refserver: RefServer, tmp_path: Path
) -> None:
    with Client(live_server.url, api_key=key) as client:
        task = client.videos.create(
            model=FAST_MODEL,
            prompt="@Image1 drifts",
            image_urls=[refserver.file_url("square.webp")],
            resolution="480p",
            duration=4,
        )
        assert task.status == "pending"
        done = client.tasks.wait(task.id, timeout=120)
        assert done.progress == 100 and done.results
        saved = client.download(done, tmp_path / "out.mp4")
    summary = decode_summary(saved)
    assert (summary.width, summary.height) == (640, 640)  # the square reference picks 1:1
    assert summary.video_frames == 96


def test_async_client_and_typed_errors(
    live_server: LiveServer, key: str, refserver: RefServer
) -> None:
    async def scenario() -> None:
        async with AsyncClient(live_server.url, api_key=key) as client:
            task = await client.videos.create(
                model=FAST_MODEL, prompt="x", image_urls=[refserver.file_url("page.jpg")]
            )
            with pytest.raises(TaskFailedError) as failed:
                await client.tasks.wait(task.id, timeout=60)
            assert failed.value.code == "reference_invalid"
            with pytest.raises(NotFoundError):
                await client.tasks.retrieve("task-unified-1700000000-abcdefgh")
            with pytest.raises(BadRequestError) as bad:
                await client.tasks.retrieve("not-an-id")
            assert bad.value.code == "invalid_task_id"

    asyncio.run(scenario())


def test_wrong_key_and_local_validation(live_server: LiveServer) -> None:
    with Client(live_server.url, api_key="r2v_wrong") as client:
        with pytest.raises(AuthenticationError):
            client.tasks.retrieve("task-unified-1700000000-abcdefgh")
        with pytest.raises(pydantic.ValidationError):
            client.videos.create(model=FAST_MODEL, prompt="x", duration=99)
