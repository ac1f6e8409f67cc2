"""What the three doors share beneath them: the store's queries and deletes, the pictures of a
video, the error envelopes, and the translations of Ark's and OpenAI's requests (the SDKs
themselves are driven in test_door_ark.py and test_door_openai.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from PIL import Image

from r2v.api.ark import ArkCreateBody, to_request
from r2v.api.errors import door_of, error_response
from r2v.api.videos import nearest_size
from r2v.bootstrap import open_store
from r2v.db.connect import Database
from r2v.db.keys import SqlKeyStore
from r2v.db.store import SqlStore
from r2v.errors import InvalidRequest, NotFound
from r2v.media.encode import Mp4Writer
from r2v.protocol import FAST_MODEL, OUTPUT_SIZES, STANDARD_MODEL, CreateVideoRequest
from r2v.settings import Settings
from r2v.storage.local import LocalBlobStore
from r2v.tasks.keys import KeyService
from r2v.tasks.links import LinkSigner
from r2v.tasks.ports import ApiKey, KeyLimits, TaskQuery
from r2v.tasks.service import TaskService
from r2v.tasks.stills import Stills, blob_keys, result_key, still_key
from r2v.worker import Housekeeper
from tests.conftest import LiveServer
from tests.mediafiles import pattern

ROOMY = KeyLimits(rate_per_minute=10_000, burst=1000, max_unfinished=1000)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    database, _sql = open_store(Settings(data_dir=tmp_path, database_url=url))
    yield database
    database.dispose()


@pytest.fixture
def store(database: Database) -> SqlStore:
    return SqlStore(database)


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


@pytest.fixture
def service(store: SqlStore, blobs: LocalBlobStore, tmp_path: Path) -> TaskService:
    return TaskService(
        store,
        blobs,
        LinkSigner(b"k" * 32, 3600),
        lambda _request: 10,
        limits_of=lambda _key: ROOMY,
        stills=Stills(blobs, tmp_path / "stills"),
    )


@pytest.fixture
def owner(database: Database) -> ApiKey:
    return KeyService(SqlKeyStore(database)).create("doors").key


@pytest.fixture
def stranger(database: Database) -> ApiKey:
    return KeyService(SqlKeyStore(database)).create("stranger").key


def submit(service: TaskService, key: ApiKey, **fields: Any) -> str:
    request = CreateVideoRequest(model=STANDARD_MODEL, prompt="a quiet lake", **fields)
    return service.submit(key, request).id


def write_video(path: Path, frames: int = 24, size: tuple[int, int] = (160, 96)) -> Path:
    with Mp4Writer(path, size[0], size[1], audio=None) as writer:
        for index in range(frames):
            writer.write(pattern(size[0], size[1], seed=index))
    return path


def complete(store: SqlStore, blobs: LocalBlobStore, task_id: str, video: Path) -> None:
    now = time.time()
    record = store.claim("w", 30, now)
    assert record is not None and record.id == task_id
    blobs.put(result_key(task_id), video)
    assert store.complete(
        task_id,
        record.attempt,
        result_key=result_key(task_id),
        video_duration=1,
        now=now,
        result_expires_at=now + 100,
        size=(160, 96),
    )


def test_find_filters_by_status_cancellation_ids_and_model_with_a_total(
    service: TaskService, owner: ApiKey, stranger: ApiKey
) -> None:
    first = submit(service, owner)
    cancelled = submit(service, owner)
    service.cancel(owner.id, cancelled, "")
    fast = service.submit(owner, CreateVideoRequest(model=FAST_MODEL, prompt="x")).id
    submit(service, stranger)

    def ids(query: TaskQuery, offset: int = 0, limit: int = 10) -> tuple[int, list[str]]:
        total, views = service.find(owner.id, query, offset, limit, "")
        return total, [view.record.id for view in views]

    assert ids(TaskQuery()) == (3, [fast, cancelled, first])
    assert ids(TaskQuery(), offset=1, limit=1) == (3, [cancelled])
    assert ids(TaskQuery(status="failed", cancelled=True)) == (1, [cancelled])
    assert ids(TaskQuery(status="failed", cancelled=False)) == (0, [])
    assert ids(TaskQuery(status="pending")) == (2, [fast, first])
    assert ids(TaskQuery(ids=(first, "task-unified-1-aaaaaaaa"))) == (1, [first])
    assert ids(TaskQuery(models=(FAST_MODEL,))) == (1, [fast])
    assert ids(TaskQuery(status="completed", has_result=True)) == (0, [])


def test_pages_run_either_way_with_a_cursor(service: TaskService, owner: ApiKey) -> None:
    made = [submit(service, owner) for _ in range(5)]
    newest, more = service.records_page(owner.id, 2)
    assert [r.id for r in newest] == made[:-3:-1] and more
    oldest, more = service.records_page(owner.id, 2, oldest_first=True)
    assert [r.id for r in oldest] == made[:2] and more
    rest, more = service.records_page(owner.id, 10, after=oldest[-1].id, oldest_first=True)
    assert [r.id for r in rest] == made[2:] and not more


def test_delete_takes_the_row_its_video_and_pictures_and_cancels_unfinished_work(
    store: SqlStore, blobs: LocalBlobStore, service: TaskService, owner: ApiKey, tmp_path: Path
) -> None:
    done = submit(service, owner, return_last_frame=True)
    complete(store, blobs, done, write_video(tmp_path / "v.mp4"))
    for still in ("thumbnail", "spritesheet", "last_frame"):
        found, _type = service.still(owner.id, done, still)
        assert found.path is not None and found.path.stat().st_size > 0
    assert all(blobs.locate(key) is not None for key in blob_keys(done))
    running = submit(service, owner)
    claimed = store.claim("w", 30, time.time())
    assert claimed is not None and claimed.id == running

    service.delete(owner.id, done)
    service.delete(owner.id, running)

    assert all(blobs.locate(key) is None for key in blob_keys(done))
    for task_id in (done, running):
        with pytest.raises(NotFound):
            service.record(owner.id, task_id)
    # the worker that held the running task can no longer write its outcome
    assert not store.complete(
        running, 1, result_key="x", video_duration=1, now=time.time(), result_expires_at=0
    )


def test_a_key_cannot_delete_or_picture_another_keys_task(
    store: SqlStore, blobs: LocalBlobStore, service: TaskService, owner: ApiKey,
    stranger: ApiKey, tmp_path: Path,
) -> None:  # fmt: skip
    task_id = submit(service, owner)
    complete(store, blobs, task_id, write_video(tmp_path / "v.mp4"))
    with pytest.raises(NotFound):
        service.delete(stranger.id, task_id)
    with pytest.raises(NotFound):
        service.still(stranger.id, task_id, "thumbnail")
    assert service.record(owner.id, task_id).id == task_id


def test_pictures_are_made_once_and_match_the_video(
    store: SqlStore, blobs: LocalBlobStore, service: TaskService, owner: ApiKey, tmp_path: Path
) -> None:
    task_id = submit(service, owner)
    complete(store, blobs, task_id, write_video(tmp_path / "v.mp4"))
    found, media_type = service.still(owner.id, task_id, "thumbnail")
    assert media_type == "image/jpeg" and found.path is not None
    with Image.open(found.path) as picture:
        assert picture.size == (160, 96)
    stamp = found.path.stat().st_mtime_ns
    again, _type = service.still(owner.id, task_id, "thumbnail")
    assert again.path is not None and again.path.stat().st_mtime_ns == stamp  # kept, not remade


def test_a_video_that_cannot_be_decoded_gives_a_404_not_a_500(
    store: SqlStore, blobs: LocalBlobStore, service: TaskService, owner: ApiKey, tmp_path: Path
) -> None:
    task_id = submit(service, owner)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 40)
    complete(store, blobs, task_id, garbage)
    with pytest.raises(NotFound) as refused:
        service.still(owner.id, task_id, "spritesheet")
    assert refused.value.code == "still_unavailable"
    assert blobs.locate(still_key(task_id, "spritesheet")) is None


def test_pictures_of_unfinished_tasks_are_404(service: TaskService, owner: ApiKey) -> None:
    task_id = submit(service, owner)
    with pytest.raises(NotFound, match="pending"):
        service.still(owner.id, task_id, "thumbnail")


def test_retention_deletes_the_pictures_with_the_video(
    store: SqlStore, blobs: LocalBlobStore, service: TaskService, owner: ApiKey, tmp_path: Path
) -> None:
    task_id = submit(service, owner)
    complete(store, blobs, task_id, write_video(tmp_path / "v.mp4"))
    service.still(owner.id, task_id, "thumbnail")
    later = time.time() + 200
    Housekeeper(
        store, blobs, tmp_path / "work", max_attempts=3, stale_workspace_seconds=60,
        clock=lambda: later,
    ).sweep()  # fmt: skip
    assert all(blobs.locate(key) is None for key in blob_keys(task_id))
    view = service.view(service.record(owner.id, task_id), "http://x")
    assert view.video_url is None  # completed, its video deleted: Ark calls it expired


def test_the_size_is_the_video_produced_else_the_one_planned(
    store: SqlStore, blobs: LocalBlobStore, service: TaskService, owner: ApiKey, tmp_path: Path
) -> None:
    fixed = submit(service, owner, aspect_ratio="9:16", resolution="480p")
    adaptive = submit(service, owner)
    assert service.view(service.record(owner.id, fixed), "").size == (496, 864)
    assert service.view(service.record(owner.id, adaptive), "").size is None
    complete(store, blobs, fixed, write_video(tmp_path / "v.mp4"))
    assert service.view(service.record(owner.id, fixed), "").size == (160, 96)


@pytest.mark.parametrize(
    ("path", "door"),
    [
        ("/v1/videos/generations", "r2v"),
        ("/v1/tasks/x", "r2v"),
        ("/v1/videos", "openai"),
        ("/v1/videos/task-unified-1-aaaaaaaa/content", "openai"),
        ("/api/v3/contents/generations/tasks", "ark"),
        ("/results/x/video.mp4", "r2v"),
    ],
)
def test_each_path_answers_in_its_doors_envelope(path: str, door: str) -> None:
    assert door_of(path) == door


def test_ark_errors_carry_arks_codes_and_openai_429s_carry_milliseconds() -> None:
    ark = json.loads(bytes(error_response(404, "task_not_found", "no task", door="ark").body))
    assert ark["error"]["code"] == "NotFound" and ark["error"]["message"] == "no task"
    kept = json.loads(bytes(error_response(400, "MissingParameter", "m", door="ark").body))
    assert kept["error"]["code"] == "MissingParameter"
    limited = error_response(
        429, "rate_limited", "slow", headers={"Retry-After": "3"}, door="openai"
    )
    assert limited.headers["retry-after-ms"] == "3000" and limited.headers["retry-after"] == "3"
    ours = json.loads(bytes(error_response(429, "rate_limited", "slow", door="r2v").body))
    assert ours["error"]["code"] == "rate_limited"


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1280, 720), ("720p", "16:9")),
        ((720, 1280), ("720p", "9:16")),
        ((1792, 1024), ("720p", "16:9")),
        ((480, 480), ("480p", "1:1")),
        ((864, 496), ("480p", "16:9")),
        ((2560, 1080), ("720p", "21:9")),
        ((1120, 832), ("720p", "4:3")),
    ],
)
def test_openai_sizes_map_to_the_nearest_entry_of_the_table(
    size: tuple[int, int], expected: tuple[str, str]
) -> None:
    assert nearest_size(*size) == expected
    resolution, ratio = expected
    assert ratio in OUTPUT_SIZES[resolution]


def ark(**fields: Any) -> CreateVideoRequest:
    body = {"model": "dreamina-seedance-2-0-260128", "content": [], **fields}
    return to_request(ArkCreateBody.model_validate(body))


def text(prompt: str) -> dict[str, Any]:
    return {"type": "text", "text": prompt}


def image(url: str, role: str | None = None) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}, "role": role}


def test_ark_content_becomes_references_in_order_with_pins() -> None:
    request = ark(
        content=[
            text("@Image2 then @Video1"),
            image("https://a.example/1.png", "first_frame"),
            image("https://a.example/2.png", "reference_image"),
            {"type": "video_url", "video_url": {"url": "https://a.example/v.mp4"}},
            image("https://a.example/3.png", "last_frame"),
            {"type": "audio_url", "audio_url": {"url": "https://a.example/a.mp3"},
             "role": "reference_audio"},
        ],
        ratio="9:16", resolution="480p", duration=-1, seed=7, generate_audio=False,
        watermark=True, service_tier="flex", return_last_frame=True, frames=None,
    )  # fmt: skip
    assert request.model == STANDARD_MODEL
    assert request.image_urls == [
        "https://a.example/1.png", "https://a.example/2.png", "https://a.example/3.png",
    ]  # fmt: skip
    assert (request.first_frame_image, request.last_frame_image) == (1, 3)
    assert request.video_urls == ["https://a.example/v.mp4"]
    assert request.audio_urls == ["https://a.example/a.mp3"]
    assert (request.aspect_ratio, request.resolution, request.duration) == ("9:16", "480p", -1)
    assert (request.seed, request.generate_audio, request.return_last_frame) == (7, False, True)


def test_an_ark_image_without_a_role_is_the_first_frame_and_frames_mean_seconds() -> None:
    request = ark(content=[text("go"), image("https://a.example/1.png")], frames=120)
    assert request.first_frame_image == 1 and request.duration == 5


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"model": "seedance-1-0-pro"}, "model", "dreamina-seedance-2-0-260128"),
        ({"content": [image("https://a.example/1.png")]}, "content", "one text item"),
        ({"content": [text("a"), text("b")]}, "content", "got 2"),
        (
            {"content": [text("a"), image("data:image/png;base64,AAAA")]},
            "content[1].image_url.url",
            "POST /v1/files",
        ),
        (
            {"content": [text("a"), image("https://a.example/1.png", "reference_video")]},
            "content[1].role",
            "reference_image",
        ),
        (
            {
                "content": [
                    text("a"),
                    image("https://a.example/1.png", "first_frame"),
                    image("https://a.example/2.png", "first_frame"),
                ]
            },
            "content[2].role",
            "only one",
        ),
        ({"content": [text("a"), image("ftp://a.example/1.png")]}, "content[1]", "http"),
        (
            {"content": [text("a"), {"type": "draft_task", "draft_task": {"id": "x"}}]},
            "content[1]",
            "not supported",
        ),
        ({"ratio": "5:4"}, "ratio", "16:9"),
        ({"resolution": "1080p"}, "resolution", "480p"),
        ({"frames": 100}, "frames", "multiple of 24"),
        ({"frames": 96, "duration": 5}, "frames", "disagree"),
        ({"draft": True}, "draft", "draft false"),
        ({"camera_fixed": True}, "camera_fixed", "prompt"),
        ({"output_format": "webm"}, "output_format", "mp4"),
        ({"tools": [{"type": "web_search"}]}, "tools", "no tools"),
    ],
)
def test_ark_bodies_r2v_cannot_honour_are_refused_naming_the_field(
    fields: dict[str, Any], param: str, words: str
) -> None:
    fields.setdefault("content", [text("a")])
    with pytest.raises(InvalidRequest) as refused:
        ark(**fields)
    assert refused.value.param == param
    assert words in refused.value.message


@pytest.mark.filterwarnings(
    "ignore:The Sora API is scheduled to permanently shut down:DeprecationWarning"
)
def test_a_5xx_after_the_task_was_stored_tells_the_sdk_not_to_send_it_again(
    live_server: LiveServer, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = live_server.runtime

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a failure after the task was stored")

    monkeypatch.setattr(runtime.tasks, "view", broken)
    client = openai.OpenAI(base_url=live_server.url + "/v1", api_key=key, max_retries=2)
    with pytest.raises(openai.InternalServerError) as failed:
        client.videos.create(model=FAST_MODEL, prompt="a quiet lake")
    assert failed.value.response.headers["x-should-retry"] == "false"
    owner = runtime.keys.authenticate(f"Bearer {key}")
    assert len(runtime.store.list_tasks(owner.id, 10, None, None)) == 1  # never sent again
