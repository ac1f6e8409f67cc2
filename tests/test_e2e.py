"""Whole tasks through a real uvicorn: references over HTTP in, a decoded MP4 out."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from r2v.bootstrap import Runtime, build_runtime
from r2v.refs.fetch import is_public
from tests.conftest import LiveServer, make_settings, wait_for
from tests.mediafiles import decode_summary
from tests.refserver import RefServer

FAST = "seedance-2.0-fast-reference-to-video"
STANDARD = "seedance-2.0-reference-to-video"


@pytest.fixture
def client(live_server: LiveServer, auth: dict[str, str]) -> httpx.Client:
    return httpx.Client(base_url=live_server.url, headers=auth, timeout=30)


def run_task(client: httpx.Client, payload: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    created = client.post("/v1/videos/generations", json=payload)
    assert created.status_code == 200, created.text
    return wait_for(client, created.json()["id"], {}, timeout)


def download(link: str, dest: Path) -> Path:
    response = httpx.get(link, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "video/mp4"
    dest.write_bytes(response.content)
    return dest


def test_images_video_and_audio_become_a_video(
    client: httpx.Client, refserver: RefServer, live_server: LiveServer, tmp_path: Path
) -> None:
    payload = {
        "model": FAST,
        "prompt": "@Image1 slowly comes alive, then @Video1 plays, with @Audio1 underneath",
        "image_urls": [refserver.file_url("photo.jpg"), refserver.file_url("square.webp")],
        "video_urls": [refserver.file_url("clip.mp4")],
        "audio_urls": [refserver.file_url("tone.mp3")],
        "resolution": "480p",
        "aspect_ratio": "16:9",
        "duration": 4,
        "seed": 7,
    }
    seen_progress: list[int] = []
    created = client.post("/v1/videos/generations", json=payload).json()
    while True:
        task = client.get(f"/v1/tasks/{created['id']}").json()
        seen_progress.append(task["progress"])
        if task["status"] in ("completed", "failed"):
            break
        time.sleep(0.1)
    assert task["status"] == "completed", task
    assert seen_progress == sorted(seen_progress), "progress must never go down"
    assert task["progress"] == 100
    hosted = {name: task["task_info"][name] for name in ("can_cancel", "video_duration", "seed")}
    assert hosted == {"can_cancel": False, "video_duration": 4, "seed": 7}
    assert task["task_info"]["estimated_time"] > 0
    assert set(task["task_info"]) <= {
        "can_cancel", "estimated_time", "video_duration", "seed", "storyboard", "warnings",
    }  # fmt: skip
    assert [shot["shows"] for shot in task["task_info"]["storyboard"]["shots"]][:1] == ["@Image1"]
    link = task["results"][0]
    assert link.startswith(live_server.url + "/results/")
    summary = decode_summary(download(link, tmp_path / "out.mp4"))
    assert (summary.width, summary.height) == (864, 496)
    assert summary.fps == 24
    assert summary.video_frames == 96
    assert summary.video_codec == "h264" and summary.pix_fmt == "yuv420p"
    assert summary.has_audio and summary.audio_codec == "aac"
    assert abs(summary.audio_duration - 4.0) <= 1 / 24


def test_text_only_portrait_without_audio(client: httpx.Client, tmp_path: Path) -> None:
    task = run_task(
        client,
        {
            "model": STANDARD,
            "prompt": "A slow sunrise over a misty valley",
            "resolution": "480p",
            "aspect_ratio": "9:16",
            "duration": 4,
            "generate_audio": False,
        },
    )
    assert task["status"] == "completed", task
    summary = decode_summary(download(task["results"][0], tmp_path / "out.mp4"))
    assert (summary.width, summary.height) == (496, 864)
    assert summary.video_frames == 96
    assert not summary.has_audio


def test_adaptive_ratio_and_auto_duration_follow_the_references(
    client: httpx.Client, refserver: RefServer, tmp_path: Path
) -> None:
    task = run_task(
        client,
        {
            "model": FAST,
            "prompt": "@Image1 in the rain, to @Audio1",
            "image_urls": [refserver.file_url("poster.png")],
            "audio_urls": [refserver.file_url("tone.wav")],
            "resolution": "480p",
            "duration": -1,
        },
    )
    assert task["status"] == "completed", task
    # a 3 s clip is under the 4 s floor: the engine picks 4 s and says so
    assert task["task_info"]["video_duration"] == 4
    summary = decode_summary(download(task["results"][0], tmp_path / "out.mp4"))
    assert (summary.width, summary.height) == (496, 864)  # the 360x640 poster is 9:16
    assert abs(summary.video_duration - 4.0) <= 1 / 24


def test_mov_video_with_wav_audio_and_adaptive_ratio_from_the_video(
    client: httpx.Client, refserver: RefServer, tmp_path: Path
) -> None:
    task = run_task(
        client,
        {
            "model": FAST,
            "prompt": "@Video1 with @Audio1 over it",
            "video_urls": [refserver.file_url("clip.mov")],
            "audio_urls": [refserver.file_url("tone.wav")],
            "resolution": "480p",
            "duration": 5,
        },
    )
    assert task["status"] == "completed", task
    summary = decode_summary(download(task["results"][0], tmp_path / "out.mp4"))
    assert (summary.width, summary.height) == (560, 752)  # the 240x320 clip is 3:4
    assert summary.video_frames == 120
    assert summary.has_audio and abs(summary.audio_duration - 5.0) <= 1 / 24


def test_result_links_support_range_and_refuse_tampering(
    client: httpx.Client, refserver: RefServer
) -> None:
    task = run_task(
        client,
        {
            "model": FAST,
            "prompt": "@Image1",
            "image_urls": [refserver.file_url("photo.jpg")],
            "resolution": "480p",
            "duration": 4,
            "generate_audio": False,
        },
    )
    link = task["results"][0]
    whole = httpx.get(link).content
    assert whole[4:8] == b"ftyp"
    partial = httpx.get(link, headers={"Range": "bytes=100-199"})
    assert partial.status_code == 206
    assert partial.content == whole[100:200]
    assert partial.headers["content-range"] == f"bytes 100-199/{len(whole)}"
    head = httpx.head(link)
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(whole)

    split = urlsplit(link)
    query = {k: v[0] for k, v in parse_qs(split.query).items()}
    base = f"{split.scheme}://{split.netloc}"
    forged_expiry = {**query, "expires": str(int(query["expires"]) + 10)}
    for bad in (
        f"{base}{split.path}?{urlencode(forged_expiry)}",
        f"{base}{split.path}",
        f"{base}{split.path.replace(task['id'], 'task-unified-1-aaaaaaaa')}?{split.query}",
    ):
        refused = httpx.get(bad)
        assert refused.status_code == 403, bad
        assert refused.json()["error"]["type"] == "permission_error"

    # each read of the task signs afresh; both links work
    time.sleep(1.1)
    fresh = client.get(f"/v1/tasks/{task['id']}").json()["results"][0]
    assert fresh != link
    assert httpx.get(fresh).status_code == 200


def test_another_key_cannot_see_a_task(client: httpx.Client, runtime: Runtime) -> None:
    task = run_task(client, {"model": FAST, "prompt": "dunes", "resolution": "480p", "duration": 4})
    other = {"Authorization": f"Bearer {runtime.keys.create('intruder').secret}"}
    response = client.get(f"/v1/tasks/{task['id']}", headers=other)
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("field", "name", "code", "fragment"),
    [
        ("image_urls", "missing.jpg", "reference_fetch_failed", "HTTP 404"),
        ("image_urls", "page.jpg", "reference_invalid", "not a supported format"),
        ("image_urls", "clip-as.jpg", "reference_invalid", "a video"),
        ("image_urls", "broken.png", "reference_invalid", "image_urls[0]"),
        ("video_urls", "photo.jpg", "reference_invalid", "an image"),
        ("video_urls", "short.mp4", "reference_invalid", "at least 2 s"),
        ("audio_urls", "long.wav", "reference_invalid", "at most 15 s"),
    ],
)
def test_bad_references_fail_the_task_with_a_code(
    client: httpx.Client, refserver: RefServer, field: str, name: str, code: str, fragment: str
) -> None:
    payload: dict[str, Any] = {
        "model": FAST,
        "prompt": "use the references",
        "resolution": "480p",
        "duration": 4,
        field: [refserver.file_url(name)],
    }
    if field == "audio_urls":
        payload["image_urls"] = [refserver.file_url("photo.jpg")]
    task = run_task(client, payload)
    assert task["status"] == "failed", task
    assert task["error"]["code"] == code
    assert fragment in task["error"]["message"]
    assert field in task["error"]["message"]
    assert "results" not in task


@pytest.fixture
def strict_client(tmp_path: Path, refserver: RefServer) -> Iterator[httpx.Client]:
    """A live server whose allow-list is empty: every private address is refused."""
    runtime = build_runtime(make_settings(tmp_path / "data", refserver, fetch_allow_hosts=[]))
    try:
        headers = {"Authorization": f"Bearer {runtime.keys.create('t').secret}"}
        with LiveServer(runtime) as server:
            yield httpx.Client(base_url=server.url, headers=headers, timeout=30)
    finally:
        runtime.close()


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "[::1]", "2130706433", "0x7f.1", "localhost", "10.1.2.3", "169.254.169.254"],
)
def test_private_literal_hosts_are_refused_at_create(
    strict_client: httpx.Client, host: str
) -> None:
    response = strict_client.post(
        "/v1/videos/generations",
        json={"model": FAST, "prompt": "@Image1", "image_urls": [f"http://{host}:8080/a.jpg"]},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "image_urls"
    assert "image_urls[0]" in error["message"] and "private" in error["message"]


def test_names_resolving_to_private_addresses_fail_at_fetch(
    strict_client: httpx.Client, refserver: RefServer
) -> None:
    # this machine's own name resolves to one of its private addresses
    host = socket.gethostname()
    resolved = {info[4][0] for info in socket.getaddrinfo(host, None)}
    assert resolved and not any(is_public(ipaddress.ip_address(a)) for a in resolved), resolved
    port = refserver.host_port.rsplit(":", 1)[1]
    hits_before = len(refserver.hits)
    task = run_task(
        strict_client,
        {
            "model": FAST,
            "prompt": "@Image1",
            "image_urls": [f"http://{host}:{port}/files/photo.jpg"],
        },
    )
    assert task["status"] == "failed"
    assert task["error"]["code"] == "reference_fetch_failed"
    assert "private" in task["error"]["message"]
    assert refserver.hits[hits_before:] == [], "nothing was requested from the private host"


def test_the_server_keeps_serving_after_failures(
    client: httpx.Client, refserver: RefServer
) -> None:
    failed = run_task(
        client,
        {"model": FAST, "prompt": "x", "image_urls": [refserver.file_url("page.jpg")]},
    )
    assert failed["status"] == "failed"
    ok = run_task(
        client, {"model": FAST, "prompt": "calm sea", "resolution": "480p", "duration": 4}
    )
    assert ok["status"] == "completed"
    assert client.get("/healthz").status_code == 200
