"""Whole tasks through a real uvicorn with the diffusers engine selected in the settings.

The tiny pipeline is written to a temp dir and named as the fast model's weights; the
server loads it when its worker starts, fetches the references from the loopback media
server, renders, and serves the MP4, which is downloaded and decoded. Needs
`r2v[diffusers]`; skipped without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

torch = pytest.importorskip("torch", reason="needs `pip install 'r2v[diffusers]'`")
pytest.importorskip("diffusers", reason="needs `pip install 'r2v[diffusers]'`")

from r2v.bootstrap import build_runtime  # noqa: E402 - only once torch is known to be there
from tests.conftest import LiveServer, make_settings, wait_for  # noqa: E402
from tests.mediafiles import decode_summary  # noqa: E402
from tests.refserver import RefServer  # noqa: E402
from tests.tinywan import save_tiny_pipeline  # noqa: E402

FAST = "seedance-2.0-fast-reference-to-video"


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    # The tiny model's operations are too small to share between threads (see the engine
    # tests): one thread keeps a render at a second or two on a busy two-core machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def client(tmp_path: Path, refserver: RefServer) -> Iterator[httpx.Client]:
    weights = save_tiny_pipeline(tmp_path / "weights")
    settings = make_settings(
        tmp_path / "data",
        refserver,
        models={
            FAST: {
                "engine": "diffusers",
                "weights_dir": str(weights),
                "device": "cpu",
                "dtype": "float32",
                "steps": 2,
            }
        },
    )
    runtime = build_runtime(settings)
    key = runtime.keys.create("test").secret
    try:
        with LiveServer(runtime) as server:
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
                yield http
    finally:
        runtime.close()


def render(client: httpx.Client, payload: dict[str, Any], dest: Path) -> dict[str, Any]:
    created = client.post("/v1/videos/generations", json=payload)
    assert created.status_code == 200, created.text
    task = wait_for(client, created.json()["id"], {}, timeout=120)
    assert task["status"] == "completed", task
    response = httpx.get(task["results"][0], timeout=30)
    assert response.status_code == 200
    dest.write_bytes(response.content)
    return task


def test_tasks_render_with_the_diffusers_engine(
    client: httpx.Client, refserver: RefServer, tmp_path: Path
) -> None:
    silent = render(
        client,
        {
            "model": FAST,
            "prompt": "@Image1 as the first frame, the dog walks in the park",
            "image_urls": [refserver.file_url("photo.jpg")],
            "resolution": "480p",
            "aspect_ratio": "16:9",
            "duration": 4,
            "seed": 7,
        },
        tmp_path / "silent.mp4",
    )
    assert silent["task_info"]["video_duration"] == 4 and silent["task_info"]["seed"] == 7
    summary = decode_summary(tmp_path / "silent.mp4")
    assert (summary.width, summary.height, summary.fps) == (864, 496, 24.0)
    assert summary.video_frames == 4 * 24
    assert not summary.has_audio  # nothing to take sound from: no audio stream

    render(
        client,
        {
            "model": FAST,
            "prompt": "@Image1 comes alive to @Audio1",
            "image_urls": [refserver.file_url("photo.jpg")],
            "audio_urls": [refserver.file_url("tone.wav")],
            "resolution": "480p",
            "duration": 5,
        },
        tmp_path / "sound.mp4",
    )
    summary = decode_summary(tmp_path / "sound.mp4")
    assert (summary.width, summary.height) == (752, 560)  # adaptive: the 4:3 photo
    assert summary.video_frames == 5 * 24 and summary.has_audio
    assert summary.audio_duration == pytest.approx(5.0, abs=0.05)
