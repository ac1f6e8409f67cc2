"""OpenAI's door, driven by the real `openai` SDK against r2v on loopback.

`client.videos.*` as any caller of OpenAI's Videos API writes it: uploads as
`input_reference`, r2v's own fields as `extra_body`, polling steered by
`openai-poll-after-ms`, cursor paging, deletes, remixes, and OpenAI's error classes.
Two servers a module: `busy` renders (one worker), `idle` never does (no worker, and a
small upload cap), so that whatever needs no finished video costs no render.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import numpy as np
import openai
import pytest
from openai.types import Video
from PIL import Image

from r2v.bootstrap import Runtime, build_runtime
from r2v.protocol import FAST_MODEL, STANDARD_MODEL, CreateVideoRequest
from tests.conftest import LiveServer, make_settings
from tests.mediafiles import decode_summary, decoded_frames, make_image, pad_to
from tests.refserver import RefServer

# The SDK marks every `videos` method deprecated (Sora's shutdown); that warning only.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The Sora API is scheduled to permanently shut down:DeprecationWarning"
)

VARIANTS: tuple[Literal["video", "thumbnail", "spritesheet"], ...] = (
    "video",
    "thumbnail",
    "spritesheet",
)
UPLOAD_CAP = 200_000
"""The idle server's body cap on `/v1/videos` and `/v1/files`."""
FILE_URL = r"^http://127\.0\.0\.1:\d+/v1/files/file-[a-z0-9]{24}/content$"


@dataclass
class Door:
    """A live r2v and what a test needs to be one of its tenants."""

    runtime: Runtime
    server: LiveServer
    data_dir: Path

    def tenant(self, name: str) -> Tenant:
        created = self.runtime.keys.create(name)
        return Tenant(self, created.secret, created.key.id)

    @property
    def url(self) -> str:
        return self.server.url


@dataclass
class Tenant:
    door: Door
    secret: str
    key_id: str

    def sdk(self, **options: Any) -> openai.OpenAI:
        """The SDK as a caller builds it; no retries, so every answer is seen as sent."""
        options.setdefault("max_retries", 0)
        return openai.OpenAI(
            base_url=self.door.url + "/v1", api_key=self.secret, timeout=60, **options
        )

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.door.url,
            headers={"Authorization": f"Bearer {self.secret}"},
            timeout=60,
        )

    def request_of(self, video_id: str) -> CreateVideoRequest:
        """The create request r2v stored for the video (what its worker will render)."""
        return self.door.runtime.tasks.record(self.key_id, video_id).request

    def stored_upload_bytes(self) -> int:
        return self.door.runtime.store.stored_bytes(self.key_id, time.time())


def _door(data_dir: Path, refserver: RefServer, **overrides: Any) -> Iterator[Door]:
    runtime = build_runtime(make_settings(data_dir, refserver, **overrides))
    try:
        with LiveServer(runtime) as server:
            yield Door(runtime, server, data_dir)
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory, refserver: RefServer) -> Iterator[Door]:
    """A server that renders."""
    yield from _door(tmp_path_factory.mktemp("busy") / "data", refserver)


@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory, refserver: RefServer) -> Iterator[Door]:
    """A server that never renders (its videos stay queued), with a small body cap."""
    yield from _door(
        tmp_path_factory.mktemp("idle") / "data",
        refserver,
        workers=0,
        max_upload_bytes=UPLOAD_CAP,
    )


@pytest.fixture(scope="module")
def owner(busy: Door) -> Tenant:
    return busy.tenant("owner")


@pytest.fixture(scope="module")
def finished(owner: Tenant, media_dir: Path) -> Video:
    """One rendered video of `owner`: a photo uploaded as `input_reference`, 4 s at 480p."""
    with (media_dir / "photo.jpg").open("rb") as photo:
        return owner.sdk().videos.create_and_poll(
            model=FAST_MODEL,
            prompt="@Image1 glides across the frame",
            input_reference=photo,
            seconds="4",
            size="1280x720",
            extra_body={"resolution": "480p"},
        )


def _download(client: openai.OpenAI, video_id: str, dest: Path, variant: Any = "video") -> Path:
    dest.write_bytes(client.videos.download_content(video_id, variant=variant).read())
    return dest


def _render(client: openai.OpenAI, **create: Any) -> Video:
    create.setdefault("model", FAST_MODEL)
    create.setdefault("seconds", "4")
    video = client.videos.create_and_poll(**create)
    assert video.status == "completed", video
    return video


# 1. create_and_poll with an uploaded image, and the three variants of its content


def test_create_and_poll_renders_the_video_with_its_thumbnail_and_sprite_sheet(
    owner: Tenant, finished: Video, tmp_path: Path
) -> None:
    assert finished.status == "completed", finished
    assert finished.progress == 100 and finished.completed_at is not None
    assert finished.model == FAST_MODEL
    # size 1280x720 picks 16:9; the explicit resolution wins over the size's 720p
    assert str(finished.size) == "864x496"
    assert finished.seconds == "4"
    client = owner.sdk()

    video = _download(client, finished.id, tmp_path / "video.mp4")
    assert video.read_bytes()[4:8] == b"ftyp"
    summary = decode_summary(video)
    assert (summary.width, summary.height) == (864, 496)
    assert abs(summary.video_duration - 4.0) < 0.1, summary

    first = decoded_frames(video)[0].astype(np.int16)
    thumb_file = _download(client, finished.id, tmp_path / "thumb.jpg", "thumbnail")
    assert thumb_file.read_bytes()[:3] == b"\xff\xd8\xff"
    with Image.open(thumb_file) as thumb:
        assert thumb.format == "JPEG" and thumb.size == (864, 496)
        pixels = np.asarray(thumb.convert("RGB"), dtype=np.int16)
    assert np.abs(pixels - first).mean() < 6, "the thumbnail is not the first frame"

    sheet_file = _download(client, finished.id, tmp_path / "sheet.jpg", "spritesheet")
    assert sheet_file.read_bytes()[:3] == b"\xff\xd8\xff"
    with Image.open(sheet_file) as opened:
        assert opened.format == "JPEG"
        sheet = opened.convert("RGB")
    # a grid of 256-wide tiles, 5 across, each the video's shape: 96 frames fill 5 rows
    tile = (256, round(256 * 496 / 864))
    assert sheet.size == (5 * tile[0], 5 * tile[1])
    assert sheet.size[0] * sheet.size[1] > tile[0] * tile[1]
    first_tile = np.asarray(sheet.crop((0, 0, *tile)), dtype=np.int16)
    scaled = Image.fromarray(first.astype(np.uint8)).resize(tile, Image.Resampling.BOX)
    assert np.abs(first_tile - np.asarray(scaled, dtype=np.int16)).mean() < 10
    # the first tile is the first frame; the last comes from later in the moving video
    last_tile = sheet.crop((4 * tile[0], 4 * tile[1], 5 * tile[0], 5 * tile[1]))
    assert np.abs(np.asarray(last_tile, dtype=np.int16) - first_tile).mean() > 10


# 2. a video or an audio clip as input_reference


def test_a_video_upload_becomes_video1(busy: Door, media_dir: Path, tmp_path: Path) -> None:
    tenant = busy.tenant("video-upload")
    client = tenant.sdk()
    clip = media_dir / "clip.mp4"
    with clip.open("rb") as handle:
        made = _render(
            client,
            prompt="@Video1 in a new light",
            input_reference=handle,
            size="1280x720",
            extra_body={"resolution": "480p"},
        )
    request = tenant.request_of(made.id)
    assert request.image_urls == [] and request.audio_urls == []
    assert len(request.video_urls) == 1
    assert re.fullmatch(FILE_URL, request.video_urls[0]), request.video_urls
    with tenant.http() as http:
        stored = http.get(httpx.URL(request.video_urls[0]).path)
    assert stored.status_code == 200 and stored.content == clip.read_bytes()
    summary = decode_summary(_download(client, made.id, tmp_path / "out.mp4"))
    assert (summary.width, summary.height) == (864, 496)

    with clip.open("rb") as handle, pytest.raises(openai.BadRequestError) as refused:
        client.videos.create(prompt="@Video1 then @Video2", input_reference=handle)
    assert refused.value.param == "prompt"
    assert "@Video2" in refused.value.body["message"]  # type: ignore[index]


def test_an_audio_upload_becomes_audio1_beside_image_urls(
    busy: Door, refserver: RefServer, media_dir: Path, tmp_path: Path
) -> None:
    tenant = busy.tenant("audio-upload")
    sent: list[bytes] = []
    http_client = openai.DefaultHttpxClient(
        event_hooks={"request": [lambda request: sent.append(request.read())]}
    )
    client = tenant.sdk(http_client=http_client)
    photo = refserver.file_url("photo.jpg")
    with (media_dir / "tone.wav").open("rb") as handle:
        made = _render(
            client,
            prompt="@Image1 sways to @Audio1",
            input_reference=handle,
            size="1280x720",
            extra_body={"image_urls": [photo], "resolution": "480p"},
        )
    # the SDK sends a list of extra_body as repeated `name[]` form fields
    create_body = next(body for body in sent if b'name="input_reference"' in body)
    assert b'name="image_urls[]"\r\n\r\n' + photo.encode() in create_body
    request = tenant.request_of(made.id)
    assert request.image_urls == [photo]
    assert len(request.audio_urls) == 1 and request.video_urls == []
    assert re.fullmatch(FILE_URL, request.audio_urls[0]), request.audio_urls
    summary = decode_summary(_download(client, made.id, tmp_path / "out.mp4"))
    assert summary.has_audio and (summary.width, summary.height) == (864, 496)


# 3. size → the nearest entry of the size table


@pytest.mark.parametrize(
    ("size", "planned"),
    [
        ("1280x720", "1248x704"),
        ("1792x1024", "1248x704"),
        ("720x1280", "704x1248"),
        ("1024x1792", "704x1248"),
        ("480x480", "640x640"),
        ("640x480", "752x560"),
    ],
)
def test_size_maps_to_the_nearest_output_size(idle: Door, size: str, planned: str) -> None:
    tenant = idle.tenant(f"size-{size}")
    made = tenant.sdk().videos.create(prompt="a calm sea", size=size)  # type: ignore[arg-type]
    assert made.status == "queued" and made.size == planned
    assert tenant.sdk().videos.retrieve(made.id).size == planned


def test_a_square_size_renders_square(busy: Door, tmp_path: Path) -> None:
    client = busy.tenant("square").sdk()
    made = _render(client, prompt="a calm sea", size="480x480")
    assert str(made.size) == "640x640"
    summary = decode_summary(_download(client, made.id, tmp_path / "square.mp4"))
    assert (summary.width, summary.height) == (640, 640)


@pytest.mark.parametrize("size", ["big", "0x0", "1280x", "x720", "00x720", "1280x00"])
def test_a_size_that_is_not_width_x_height_is_refused(idle: Door, size: str) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        idle.tenant("bad-size").sdk().videos.create(prompt="a calm sea", size=size)  # type: ignore[arg-type]
    assert refused.value.param == "size"
    assert "WIDTHxHEIGHT" in refused.value.body["message"]  # type: ignore[index]


# 4. seconds and model


@pytest.mark.parametrize("seconds", ["3", "16"])
def test_seconds_out_of_range_is_refused_naming_seconds(idle: Door, seconds: str) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        idle.tenant("seconds").sdk().videos.create(prompt="a calm sea", seconds=seconds)  # type: ignore[arg-type]
    message = refused.value.body["message"]  # type: ignore[index]
    assert "from 4 to 15" in message and seconds in message
    # the caller sent `seconds`: the error names that field, not r2v's `duration`
    assert refused.value.param == "seconds", refused.value.body
    assert message.startswith("seconds"), message


def test_seconds_that_is_no_number_is_refused(idle: Door) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        idle.tenant("seconds").sdk().videos.create(prompt="a calm sea", seconds="abc")  # type: ignore[arg-type]
    assert refused.value.param == "seconds"
    assert "whole number" in refused.value.body["message"]  # type: ignore[index]


def test_a_sora_model_is_refused_naming_ours(idle: Door) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        idle.tenant("sora").sdk().videos.create(model="sora-2", prompt="a calm sea")
    assert refused.value.param == "model"
    message = refused.value.body["message"]  # type: ignore[index]
    assert "sora-2" in message and STANDARD_MODEL in message and FAST_MODEL in message


def test_no_model_means_the_standard_model(idle: Door) -> None:
    tenant = idle.tenant("no-model")
    made = tenant.sdk().videos.create(prompt="a calm sea", seconds="8")
    assert made.model == STANDARD_MODEL and made.seconds == "8"
    assert tenant.request_of(made.id).model == STANDARD_MODEL


# 5. list


def test_list_pages_by_cursor_in_either_order(idle: Door) -> None:
    client = idle.tenant("lister").sdk()
    made = [client.videos.create(prompt=f"a calm sea, take {n}").id for n in range(5)]
    newest_first = made[::-1]

    first = client.videos.list(limit=2)
    assert [v.id for v in first.data] == newest_first[:2]
    assert first.has_more is True
    assert first.to_dict()["first_id"] == newest_first[0]
    assert first.last_id == newest_first[1]
    second = client.videos.list(limit=2, after=newest_first[1])
    assert [v.id for v in second.data] == newest_first[2:4] and second.has_more
    assert second.last_id == newest_first[3]
    third = client.videos.list(limit=2, after=newest_first[3])
    assert [v.id for v in third.data] == newest_first[4:] and third.has_more is False
    assert third.to_dict()["first_id"] == third.last_id == made[0]

    oldest = client.videos.list(limit=3, order="asc")
    assert [v.id for v in oldest.data] == made[:3] and oldest.has_more
    assert oldest.last_id == made[2]
    rest = client.videos.list(limit=3, order="asc", after=made[2])
    assert [v.id for v in rest.data] == made[3:] and rest.has_more is False
    assert [v.id for v in client.videos.list(order="desc").data] == newest_first

    # the SDK's auto-pagination follows `last_id` until `has_more` is false
    assert [v.id for v in client.videos.list(limit=2)] == newest_first
    assert [v.id for v in client.videos.list(limit=2, order="asc")] == made
    with pytest.raises(openai.BadRequestError):
        client.videos.list(limit=0)


# 6. delete


def test_deleting_a_finished_video_removes_it_from_every_door(busy: Door, media_dir: Path) -> None:
    tenant = busy.tenant("deleter")
    client = tenant.sdk()
    with (media_dir / "square.webp").open("rb") as picture:
        made = _render(client, prompt="@Image1 turns", input_reference=picture, size="480x480")
    client.videos.download_content(made.id, variant="thumbnail").read()  # a stored still
    stored = busy.data_dir / "blobs" / "results" / made.id
    assert (stored / "video.mp4").is_file() and (stored / "thumbnail.jpg").is_file()
    with tenant.http() as http:
        link = http.get(f"/v1/tasks/{made.id}").json()["results"][0]
        assert httpx.get(link).status_code == 200

        deleted = client.videos.delete(made.id)
        assert deleted.id == made.id and deleted.deleted is True
        assert deleted.object == "video.deleted"

        with pytest.raises(openai.NotFoundError):
            client.videos.retrieve(made.id)
        with pytest.raises(openai.NotFoundError):
            client.videos.download_content(made.id)
        assert http.get(f"/v1/tasks/{made.id}").status_code == 404
        ark = http.get(f"/api/v3/contents/generations/tasks/{made.id}")
        assert ark.status_code == 404, ark.text
        assert httpx.get(link).status_code == 404
    assert not stored.exists()
    assert made.id not in [v.id for v in client.videos.list()]
    with pytest.raises(openai.NotFoundError):
        client.videos.delete(made.id)


def test_deleting_a_queued_video_cancels_and_removes_it(idle: Door) -> None:
    tenant = idle.tenant("queued-deleter")
    client = tenant.sdk()
    made = client.videos.create(prompt="a calm sea")
    kept = client.videos.create(prompt="a calm sea, kept")
    assert client.videos.retrieve(made.id).status == "queued"
    deleted = client.videos.delete(made.id)
    assert deleted.deleted is True and deleted.id == made.id
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(made.id)
    with tenant.http() as http:
        assert http.get(f"/v1/tasks/{made.id}").status_code == 404
        assert http.get(f"/api/v3/contents/generations/tasks/{made.id}").status_code == 404
    assert [v.id for v in client.videos.list()] == [kept.id]


# 7. remix


def test_a_remix_keeps_the_references_and_settings_with_a_new_prompt(
    owner: Tenant, finished: Video
) -> None:
    remixed = owner.sdk().videos.remix(finished.id, prompt="@Image1 spins slowly")
    assert remixed.id != finished.id
    assert remixed.remixed_from_video_id == finished.id
    assert remixed.prompt == "@Image1 spins slowly"
    assert remixed.status in ("queued", "in_progress")
    assert (remixed.size, remixed.seconds, remixed.model) == (
        finished.size,
        finished.seconds,
        finished.model,
    )
    original = owner.request_of(finished.id)
    remix = owner.request_of(remixed.id)
    assert remix.prompt == "@Image1 spins slowly"
    assert remix.model_dump(exclude={"prompt", "seed"}) == original.model_dump(
        exclude={"prompt", "seed"}
    )
    assert len(remix.image_urls) == 1


def test_a_remix_names_its_source_when_read_back(owner: Tenant, finished: Video) -> None:
    client = owner.sdk()
    remixed = client.videos.remix(finished.id, prompt="@Image1 bows")
    assert client.videos.retrieve(remixed.id).remixed_from_video_id == finished.id
    listed = {v.id: v for v in client.videos.list(limit=100)}
    assert listed[remixed.id].remixed_from_video_id == finished.id


def test_a_remix_needs_a_video_of_the_same_key(busy: Door, finished: Video) -> None:
    client = busy.tenant("remixer").sdk()
    with pytest.raises(openai.NotFoundError):
        client.videos.remix(finished.id, prompt="@Image1 is mine now")
    assert list(client.videos.list()) == []


# 8. JSON creates and reference objects


def test_a_json_create_works(idle: Door) -> None:
    tenant = idle.tenant("json")
    with tenant.http() as http:
        made = http.post(
            "/v1/videos",
            json={"model": FAST_MODEL, "prompt": "a calm sea", "seconds": 4, "size": "720x1280"},
        )
    assert made.status_code == 200, made.text
    body = made.json()
    assert body["object"] == "video" and body["status"] == "queued"
    assert (body["model"], body["seconds"], body["size"]) == (FAST_MODEL, "4", "704x1248")
    assert int(made.headers["openai-poll-after-ms"]) > 0
    assert tenant.sdk().videos.retrieve(body["id"]).prompt == "a calm sea"


def test_input_reference_may_name_an_image_url(idle: Door, refserver: RefServer) -> None:
    tenant = idle.tenant("by-url")
    photo = refserver.file_url("photo.jpg")
    with tenant.http() as http:
        made = http.post(
            "/v1/videos", json={"prompt": "@Image1 waves", "input_reference": {"image_url": photo}}
        )
    assert made.status_code == 200, made.text
    assert tenant.request_of(made.json()["id"]).image_urls == [photo]
    # in a multipart create, the object's fields as `input_reference[image_url]` (the
    # SDK's own create takes only a file there: it refuses a dict before sending)
    with tenant.http() as http:
        form = http.post(
            "/v1/videos",
            files={"prompt": (None, "@Image1 waves"), "input_reference[image_url]": (None, photo)},
        )
    assert form.status_code == 200, form.text
    assert tenant.request_of(form.json()["id"]).image_urls == [photo]


def test_input_reference_may_name_an_upload_of_the_key(idle: Door, tmp_path: Path) -> None:
    tenant = idle.tenant("by-file")
    picture = make_image(tmp_path / "small.png", 320, 240, "PNG", seed=9)
    by_id = {"prompt": (None, "@Image1"), "input_reference[file_id]": (None, "")}
    with tenant.http() as http, picture.open("rb") as handle:
        uploaded = http.post("/v1/files", files={"file": ("small.png", handle)})
        assert uploaded.status_code == 200, uploaded.text
        file = uploaded.json()
        by_id["input_reference[file_id]"] = (None, file["id"])
        made = http.post(
            "/v1/videos",
            json={"prompt": "@Image1 waves", "input_reference": {"file_id": file["id"]}},
        )
        form = http.post("/v1/videos", files=by_id)
    assert made.status_code == 200, made.text
    assert tenant.request_of(made.json()["id"]).image_urls == [file["url"]]
    assert form.status_code == 200, form.text
    assert tenant.request_of(form.json()["id"]).image_urls == [file["url"]]

    stranger = idle.tenant("not-the-uploader")
    with stranger.http() as http:
        refused = http.post(
            "/v1/videos", json={"prompt": "@Image1", "input_reference": {"file_id": file["id"]}}
        )
        refused_form = http.post("/v1/videos", files=by_id)
    for answer in (refused, refused_form):
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["type"] == "not_found_error"
        assert file["id"] in answer.json()["error"]["message"]
    assert list(stranger.sdk().videos.list()) == []


# 9. keys and limits


def test_a_wrong_key_is_an_authentication_error(idle: Door) -> None:
    client = openai.OpenAI(base_url=idle.url + "/v1", api_key="r2v-not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        client.videos.create(prompt="a calm sea")
    assert refused.value.type == "authentication_error"
    with pytest.raises(openai.AuthenticationError):
        client.videos.list()
    with pytest.raises(openai.AuthenticationError):
        client.videos.retrieve("task-unified-1700000000-abcdefgh")


def test_a_rate_limited_key_gets_a_rate_limit_error_with_both_retry_headers(
    idle: Door,
) -> None:
    created = idle.runtime.keys.create("slow", rate_per_minute=1)  # a burst of one
    client = openai.OpenAI(base_url=idle.url + "/v1", api_key=created.secret, max_retries=0)
    client.videos.create(prompt="a calm sea")
    with pytest.raises(openai.RateLimitError) as limited:
        client.videos.create(prompt="a calm sea, again")
    headers = limited.value.response.headers
    seconds = int(headers["retry-after"])
    assert seconds >= 1
    assert int(headers["retry-after-ms"]) == seconds * 1000
    assert limited.value.type == "rate_limit_error"
    assert len(list(client.videos.list())) == 1


# 10. hostile requests


def _uploads(door: Door) -> set[str]:
    root = door.data_dir / "blobs" / "files"
    return {path.name for path in root.iterdir()} if root.exists() else set()


def _scratch_is_empty(door: Door) -> bool:
    scratch = door.data_dir / "incoming"
    return not scratch.exists() or not any(scratch.iterdir())


def test_an_upload_that_is_not_media_is_refused_and_not_kept(idle: Door, media_dir: Path) -> None:
    tenant = idle.tenant("html")
    before = _uploads(idle)
    with (
        (media_dir / "page.jpg").open("rb") as page,
        pytest.raises(openai.BadRequestError) as refused,
    ):
        tenant.sdk().videos.create(prompt="@Image1", input_reference=page)
    assert "JPEG, PNG or WebP" in refused.value.body["message"]  # type: ignore[index]
    assert _uploads(idle) == before and _scratch_is_empty(idle)
    assert tenant.stored_upload_bytes() == 0
    assert list(tenant.sdk().videos.list()) == []


def test_a_refused_create_keeps_no_upload(idle: Door, tmp_path: Path) -> None:
    tenant = idle.tenant("refused-with-file")
    picture = make_image(tmp_path / "ok.png", 320, 240, "PNG", seed=3)
    before = _uploads(idle)
    wrongs: list[dict[str, Any]] = [{"model": "sora-2"}, {"seconds": "3"}, {"size": "big"}]
    for wrong in wrongs:
        with picture.open("rb") as handle, pytest.raises(openai.BadRequestError):
            tenant.sdk().videos.create(prompt="@Image1", input_reference=handle, **wrong)
    with picture.open("rb") as handle, pytest.raises(openai.BadRequestError):
        tenant.sdk().videos.create(prompt="@Image2", input_reference=handle)
    assert _uploads(idle) == before, "a refused create left its upload stored"
    assert tenant.stored_upload_bytes() == 0


def test_an_upload_over_the_cap_is_a_413(idle: Door, tmp_path: Path) -> None:
    tenant = idle.tenant("big")
    big = pad_to(make_image(tmp_path / "big.jpg", 64, 64), UPLOAD_CAP + 50_000)
    before = _uploads(idle)
    with big.open("rb") as handle, pytest.raises(openai.APIStatusError) as refused:
        tenant.sdk().videos.create(prompt="@Image1", input_reference=handle)
    assert refused.value.status_code == 413
    assert refused.value.type == "request_too_large_error"
    assert f"{UPLOAD_CAP:,} bytes" in refused.value.body["message"]  # type: ignore[index]
    assert _uploads(idle) == before and tenant.stored_upload_bytes() == 0


def test_malformed_create_bodies_are_400s(idle: Door, tmp_path: Path) -> None:
    tenant = idle.tenant("malformed")
    one = make_image(tmp_path / "one.png", 64, 64, "PNG", seed=1).read_bytes()
    before = _uploads(idle)
    with tenant.http() as http:
        two_files = http.post(
            "/v1/videos",
            data={"prompt": "@Image1"},
            files=[("input_reference", ("a.png", one)), ("input_reference", ("b.png", one))],
        )
        assert two_files.status_code == 400, two_files.text
        assert two_files.json()["error"]["type"] == "invalid_request_error"

        no_prompt = http.post("/v1/videos", files={"seconds": (None, "4")})
        assert no_prompt.status_code == 400, no_prompt.text
        assert no_prompt.json()["error"]["param"] == "prompt"
        assert "prompt" in no_prompt.json()["error"]["message"]

        for content_type, body in (
            ("text/plain", b"a calm sea"),
            ("application/octet-stream", b"\x00\x01\x02"),
            ("application/json", b"{not json"),
            ("application/json", b'["a calm sea"]'),
        ):
            refused = http.post("/v1/videos", content=body, headers={"Content-Type": content_type})
            assert refused.status_code == 400, (content_type, body, refused.text)
            assert set(refused.json()["error"]) == {"code", "message", "type", "param"}
    assert _uploads(idle) == before
    assert list(tenant.sdk().videos.list()) == []


def test_an_unfinished_video_has_no_content_yet(idle: Door) -> None:
    client = idle.tenant("early").sdk()
    queued = client.videos.with_raw_response.create(prompt="a calm sea")
    made = queued.parse()
    assert int(queued.headers["openai-poll-after-ms"]) > 0
    polled = client.videos.with_raw_response.retrieve(made.id)
    assert polled.parse().status == "queued"
    assert int(polled.headers["openai-poll-after-ms"]) > 0
    for variant in VARIANTS:
        with pytest.raises(openai.NotFoundError) as early:
            client.videos.download_content(made.id, variant=variant)
        assert early.value.code == "video_not_ready"
        assert "queued" in early.value.body["message"]  # type: ignore[index]


def test_an_unknown_variant_is_a_400_naming_variant(owner: Tenant, finished: Video) -> None:
    with pytest.raises(openai.BadRequestError) as bogus:
        owner.sdk().videos.download_content(finished.id, variant="bogus")  # type: ignore[arg-type]
    message = bogus.value.body["message"]  # type: ignore[index]
    assert "variant" in message and "thumbnail" in message and "spritesheet" in message
    assert bogus.value.param == "variant", bogus.value.body


def _raw(url: str, head: bytes, body_part: bytes) -> tuple[bytes, float]:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(head + body_part)
        return sock.recv(65536), time.monotonic() - started


def test_an_unauthenticated_body_is_refused_before_it_is_read(busy: Door) -> None:
    for authorization in (b"", b"Authorization: Bearer r2v-not-a-key\r\n"):
        head = (
            b"POST /v1/videos HTTP/1.1\r\nHost: x\r\n" + authorization + b"Content-Type: "
            b"multipart/form-data; boundary=b\r\nContent-Length: 40000000\r\n\r\n"
        )
        # 40 MB announced, 64 KB sent: the 401 comes without waiting for the rest
        answer, took = _raw(busy.url, head, b"x" * 65536)
        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
        assert b"authentication_error" in answer and took < 2.0


def test_the_server_still_answers_after_the_hostile_requests(idle: Door, busy: Door) -> None:
    for door in (idle, busy):
        assert httpx.get(door.url + "/healthz").status_code == 200
        client = door.tenant("after").sdk()
        made = client.videos.create(prompt="a calm sea")
        assert client.videos.retrieve(made.id).id == made.id


# 11. tenants


def test_another_key_cannot_see_or_touch_a_video(
    busy: Door, owner: Tenant, finished: Video
) -> None:
    stranger = busy.tenant("stranger")
    client = stranger.sdk()
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(finished.id)
    for variant in VARIANTS:
        with pytest.raises(openai.NotFoundError):
            client.videos.download_content(finished.id, variant=variant)
    with pytest.raises(openai.NotFoundError):
        client.videos.delete(finished.id)
    with pytest.raises(openai.NotFoundError):
        client.videos.remix(finished.id, prompt="@Image1 is mine")
    assert finished.id not in [v.id for v in client.videos.list()]
    with pytest.raises(openai.BadRequestError):
        client.videos.list(after=finished.id)  # not a cursor of this key
    # and the owner still has it, whole
    assert owner.sdk().videos.retrieve(finished.id).status == "completed"
