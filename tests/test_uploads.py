"""`POST /v1/files`: local references uploaded, checked, usable only by their own key."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from r2v.bootstrap import Runtime, build_runtime
from r2v.settings import Settings
from tests.conftest import LiveServer, make_settings, wait_for
from tests.mediafiles import decode_summary, make_image, make_wav, pad_to
from tests.refserver import RefServer

FAST = "seedance-2.0-fast-reference-to-video"


@pytest.fixture
def settings(tmp_path: Path, refserver: RefServer) -> Settings:
    return make_settings(tmp_path / "data", refserver, max_upload_bytes=31_000_000)


@pytest.fixture
def client(live_server: LiveServer, auth: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, headers=auth, timeout=60) as http:
        yield http


def upload(
    client: httpx.Client, path: Path, headers: dict[str, str] | None = None
) -> httpx.Response:
    with path.open("rb") as handle:
        return client.post(
            "/v1/files", files={"file": (path.name, handle, "image/jpeg")}, headers=headers
        )


def test_upload_then_render_from_it(
    client: httpx.Client, live_server: LiveServer, tmp_path: Path
) -> None:
    picture = make_image(tmp_path / "portrait.png", 360, 640, "PNG", seed=4)
    response = upload(client, picture)
    assert response.status_code == 200, response.text
    body = response.json()
    assert re.fullmatch(r"file-[a-z0-9]{24}", body["id"])
    assert body["bytes"] == picture.stat().st_size
    assert body["kind"] == "image" and body["filename"] == "portrait.png"
    assert body["url"] == f"{live_server.url}/v1/files/{body['id']}/content"
    assert body["expires_at"] - body["created_at"] == 86400

    content = client.get(f"/v1/files/{body['id']}/content")
    assert content.status_code == 200 and content.content == picture.read_bytes()
    assert client.get(f"/v1/files/{body['id']}").json()["id"] == body["id"]

    created = client.post(
        "/v1/videos/generations",
        json={
            "model": FAST,
            "prompt": "@Image1 under a slow zoom",
            "image_urls": [body["url"]],
            "resolution": "480p",
            "duration": 4,
        },
    )
    assert created.status_code == 200, created.text
    task = wait_for(client, created.json()["id"], {}, timeout=120)
    assert task["status"] == "completed", task
    video = tmp_path / "out.mp4"
    video.write_bytes(httpx.get(task["results"][0]).content)
    assert (decode_summary(video).width, decode_summary(video).height) == (496, 864)


def test_another_key_can_neither_see_nor_use_an_upload(
    client: httpx.Client, runtime: Runtime, tmp_path: Path
) -> None:
    body = upload(client, make_image(tmp_path / "a.jpg", 320, 240)).json()
    other = {"Authorization": f"Bearer {runtime.keys.create('other').secret}"}
    assert client.get(f"/v1/files/{body['id']}", headers=other).status_code == 404
    assert client.get(f"/v1/files/{body['id']}/content", headers=other).status_code == 404
    refused = client.post(
        "/v1/videos/generations",
        headers=other,
        json={"model": FAST, "prompt": "@Image1", "image_urls": [body["url"]]},
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "image_urls"
    assert body["id"] in refused.json()["error"]["message"]


def test_an_upload_of_the_wrong_kind_is_refused_at_create(
    client: httpx.Client, tmp_path: Path
) -> None:
    sound = upload(client, make_wav(tmp_path / "a.wav", seconds=2.0)).json()
    assert sound["kind"] == "audio"
    refused = client.post(
        "/v1/videos/generations",
        json={"model": FAST, "prompt": "@Image1", "image_urls": [sound["url"]]},
    )
    assert refused.status_code == 400
    message = refused.json()["error"]["message"]
    assert message.startswith("image_urls[0]")
    assert "is an audio file: put it in audio_urls" in message


def test_unsupported_and_oversized_uploads(client: httpx.Client, tmp_path: Path) -> None:
    page = tmp_path / "page.jpg"
    page.write_bytes(b"<html>not a picture</html>")
    refused = upload(client, page)
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "file"

    big = pad_to(make_image(tmp_path / "big.jpg", 64, 64), 30_000_001)
    too_large = upload(client, big)
    assert too_large.status_code == 413
    assert "30 MB" in too_large.json()["error"]["message"]

    beyond_the_body_cap = pad_to(make_image(tmp_path / "huge.jpg", 64, 64), 31_000_001)
    assert upload(client, beyond_the_body_cap).status_code == 413

    no_file = client.post("/v1/files", data={"purpose": "reference"})
    assert no_file.status_code == 400
    assert client.get("/healthz").status_code == 200


def test_expired_uploads_are_deleted_and_refused(refserver: RefServer, tmp_path: Path) -> None:
    runtime = build_runtime(make_settings(tmp_path / "data", refserver, retention_seconds=60))
    try:
        headers = {"Authorization": f"Bearer {runtime.keys.create('t').secret}"}
        with (
            LiveServer(runtime) as server,
            httpx.Client(base_url=server.url, headers=headers, timeout=30) as client,
        ):
            body = upload(client, make_image(tmp_path / "a.jpg", 320, 240)).json()
            stored = next((tmp_path / "data" / "blobs" / "files").iterdir())
            assert stored.name == body["id"]
            # the retention sweep, as it runs an hour later
            assert runtime.files.sweep(now=time.time() + 3600) == 1
            assert not stored.exists()
            refused = client.post(
                "/v1/videos/generations",
                json={"model": FAST, "prompt": "@Image1", "image_urls": [body["url"]]},
            )
            assert refused.status_code == 400
            assert "expire" in refused.json()["error"]["message"]
    finally:
        runtime.close()
