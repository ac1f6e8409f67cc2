"""The SDK against the real app: in-process and under a real uvicorn, sync and async."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydantic
import pytest

from r2v.bootstrap import Runtime, build_app
from r2v.client import (
    FAST_MODEL,
    APIConnectionError,
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    Client,
    ConflictError,
    NotFoundError,
    TaskFailedError,
)
from tests.conftest import LiveServer
from tests.flakyproxy import FlakyProxy
from tests.mediafiles import decode_summary, make_image, make_wav
from tests.refserver import RefServer

QUICK = {"model": FAST_MODEL, "resolution": "480p", "duration": 4}


def test_generate_uploads_waits_and_downloads(
    live_server: LiveServer, key: str, tmp_path: Path
) -> None:
    picture = make_image(tmp_path / "square.webp", 400, 400, "WEBP")
    sound = make_wav(tmp_path / "tone.wav", seconds=3.0)
    seen: list[int] = []
    with Client(live_server.url, api_key=key) as client:
        done = client.videos.generate(
            "@Image1 drifts while @Audio1 plays",
            model=FAST_MODEL,
            images=[picture],
            audios=[sound],
            resolution="480p",
            duration=4,
            output=tmp_path / "out.mp4",
            on_progress=lambda task: seen.append(task.progress),
        )
    assert done.status == "completed" and seen == sorted(seen) and seen[-1] == 100
    summary = decode_summary(tmp_path / "out.mp4")
    assert (summary.width, summary.height) == (640, 640)
    assert summary.video_frames == 96 and summary.has_audio
    assert not (tmp_path / "out.mp4.part").exists()


def test_the_sdk_in_process_through_the_app(runtime: Runtime, key: str) -> None:
    # the app itself as the transport: no socket, no server thread (and no workers running)
    transport = httpx.ASGITransport(app=build_app(runtime))

    async def scenario() -> None:
        async with AsyncClient("http://testserver", api_key=key, transport=transport) as client:
            created = await client.videos.create(prompt="in process", **QUICK)
            assert (await client.tasks.retrieve(created.id)).id == created.id
            listed = await client.tasks.list(limit=5)
            assert [t.id for t in listed.data] == [created.id]
            cancelled = await client.tasks.cancel(created.id)
            assert cancelled.error is not None and cancelled.error.code == "request_cancelled"
            with pytest.raises(ConflictError):
                await client.tasks.cancel(created.id)

    asyncio.run(scenario())


def test_stream_follows_a_task_to_the_end(live_server: LiveServer, key: str) -> None:
    with Client(live_server.url, api_key=key) as client:
        task = client.videos.create(prompt="waves", **QUICK)
        updates = list(client.tasks.stream(task.id))
    assert updates[-1].status == "completed"
    assert [u.progress for u in updates] == sorted(u.progress for u in updates)


def test_async_client_and_typed_errors(
    live_server: LiveServer, key: str, refserver: RefServer, tmp_path: Path
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
            done = await client.videos.generate(
                "@Image1",
                model=FAST_MODEL,
                images=[make_image(tmp_path / "a.png", 64, 48, "PNG")],
                resolution="480p",
                duration=4,
                output=tmp_path / "async.mp4",
            )
            statuses = [update.status async for update in client.tasks.stream(done.id)]
            assert statuses == ["completed"]
            page = await client.tasks.list(limit=1)
            assert page.data[0].id == done.id and page.has_more

    asyncio.run(scenario())
    assert decode_summary(tmp_path / "async.mp4").video_frames == 96


def test_wrong_key_local_validation_and_no_server(live_server: LiveServer) -> None:
    with Client(live_server.url, api_key="r2v_wrong") as client:
        with pytest.raises(AuthenticationError):
            client.tasks.retrieve("task-unified-1700000000-abcdefgh")
        with pytest.raises(pydantic.ValidationError):
            client.videos.create(model=FAST_MODEL, prompt="x", duration=99)
    naps: list[float] = []
    with Client("http://127.0.0.1:9", api_key="k", sleep=naps.append) as client:
        with pytest.raises(APIConnectionError):
            client.tasks.retrieve("task-unified-1700000000-abcdefgh")
    assert len(naps) == 2 and all(0 < nap <= 8 for nap in naps)


@pytest.fixture
def proxy(live_server: LiveServer) -> Iterator[FlakyProxy]:
    flaky = FlakyProxy(live_server.url)
    yield flaky
    flaky.shutdown()
    flaky.server_close()


def test_a_retry_after_a_dropped_answer_creates_no_second_task(proxy: FlakyProxy, key: str) -> None:
    # the first create reaches the server and makes a task, but its answer is lost
    proxy.drop_next[("POST", "/v1/videos/generations")] = 1
    with Client(proxy.url, api_key=key, sleep=lambda _s: None) as client:
        task = client.videos.create(prompt="only once", **QUICK)
        listed = client.tasks.list(limit=10)
    assert proxy.forwarded.count(("POST", "/v1/videos/generations")) == 2
    assert [t.id for t in listed.data] == [task.id]


def test_downloads_resume_after_a_break(proxy: FlakyProxy, key: str, tmp_path: Path) -> None:
    with Client(proxy.url, api_key=key, sleep=lambda _s: None) as client:
        done = client.tasks.wait(client.videos.create(prompt="sand", **QUICK).id)
        link = done.results[0]  # type: ignore[index]
        whole = httpx.get(link).content
        path = "/" + link.split("/", 3)[3].split("?")[0]
        proxy.truncate_next[("GET", path)] = 1
        # the download goes through the proxy, which cuts the first answer halfway
        through_proxy = done.model_copy(
            update={"results": [link.replace(link.split("/results/")[0], proxy.url)]}
        )
        client.download(through_proxy, tmp_path / "resumed.mp4")
    assert (tmp_path / "resumed.mp4").read_bytes() == whole
    assert proxy.forwarded.count(("GET", path + "?" + link.split("?")[1])) == 2
    assert proxy.ranges[-1] == f"bytes={len(whole) // 2}-"  # the second asked for the rest
