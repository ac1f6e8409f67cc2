"""A finished task says what was understood: `task_info.storyboard` and `task_info.warnings`.

Rendered for real by the compositor under a live server (references over loopback HTTP or
uploaded), read back through the raw API, the SDK's models and `r2v tasks get`, and checked
against the video itself. The column that keeps them migrates on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from r2v.bootstrap import build_runtime
from r2v.cli.client import storyboard_lines
from r2v.client import Client
from r2v.db.connect import Database, open_database
from r2v.db.keys import SqlKeyStore
from r2v.db.migrate import MIGRATIONS, upgrade
from r2v.db.store import SqlStore
from r2v.engines.base import AudioInput, ImageInput, RenderSummary, VideoInput
from r2v.engines.compositor.engine import CompositorEngine
from r2v.engines.compositor.summary import summarize
from r2v.protocol import FPS, CreateVideoRequest, Storyboard, TaskInfo, TaskObject
from r2v.storage.local import LocalBlobStore
from r2v.tasks.keys import KeyService
from r2v.tasks.links import LinkSigner
from r2v.tasks.ports import KeyLimits
from r2v.tasks.service import TaskService
from tests.conftest import LiveServer, make_settings, wait_for
from tests.mediafiles import (
    decoded_frames,
    difference,
    engine_request,
    fitted,
    make_image,
    make_video,
    make_wav,
)
from tests.refserver import RefServer

FAST = "seedance-2.0-fast-reference-to-video"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, refserver: RefServer) -> Iterator[LiveServer]:
    """One real server for the module's renders."""
    data = Path(tmp_path_factory.mktemp("summary")) / "data"
    runtime = build_runtime(make_settings(data, refserver))
    try:
        with LiveServer(runtime) as server:
            yield server
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def key(live: LiveServer) -> str:
    return live.runtime.keys.create("summary").secret


def render(live: LiveServer, key: str, **fields: Any) -> dict[str, Any]:
    """Create a fast 480p task through the raw API and wait for it to finish."""
    body = {"model": FAST, "resolution": "480p", "seed": 5, **fields}
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=live.url, timeout=30) as client:
        created = client.post("/v1/videos/generations", json=body, headers=headers)
        assert created.status_code == 200, created.text
        assert "storyboard" not in created.json()["task_info"], "nothing is known yet"
        return wait_for(client, created.json()["id"], headers)


def test_a_finished_task_carries_the_storyboard_it_was_rendered_from(
    live: LiveServer, key: str, refserver: RefServer, media_dir: Path, tmp_path: Path
) -> None:
    task = render(
        live, key,
        prompt="@Image2 slowly pushing in, then @Image1 panning left",
        image_urls=[refserver.file_url("photo.jpg"), refserver.file_url("poster.png")],
        aspect_ratio="16:9", duration=4, generate_audio=True,
    )  # fmt: skip
    assert task["status"] == "completed", task
    info = task["task_info"]
    board = Storyboard.model_validate(info["storyboard"])
    # the shots, in the prompt's order, cover the video end to end
    assert [shot.shows for shot in board.shots] == ["@Image2", "@Image1"]
    assert [shot.camera for shot in board.shots] == ["push_in", "pan_left"]
    assert board.shots[0].start == 0 and board.shots[-1].end == info["video_duration"] == 4
    assert all(a.end == b.start for a, b in zip(board.shots, board.shots[1:], strict=False))
    assert board.shots[0].words == "@Image2 slowly pushing in"
    assert "grade" not in info["storyboard"]["shots"][0], "no grade: the field stays absent"
    # no audio reference: a synthesized score spans the video
    assert [(s.plays, s.role, s.start, s.end) for s in board.sounds] == [
        ("score", "background", 0.0, 4.0)
    ]
    # everything was named and the size was given: nothing to warn about
    assert "warnings" not in info
    # as `r2v tasks get` prints it, the score on the first shot
    assert storyboard_lines(TaskObject.model_validate(task)) == [
        "  time         shows    camera    sound",
        f"  0.00-{board.shots[0].end:.2f} s  @Image2  push_in   score (background)",
        f"  {board.shots[1].start:.2f}-4.00 s  @Image1  pan_left",
    ]

    # the storyboard describes the video: mid-shot, each frame is its shot's picture
    with httpx.Client(timeout=30) as client:
        video = tmp_path / "out.mp4"
        video.write_bytes(client.get(task["results"][0]).content)
    frames = decoded_frames(video)
    assert len(frames) == 4 * FPS
    size = (frames[0].shape[1], frames[0].shape[0])
    pictures = {
        "@Image1": fitted(media_dir / "photo.jpg", size),
        "@Image2": fitted(media_dir / "poster.png", size),
    }
    for shot in board.shots:
        middle = frames[round((shot.start + shot.end) / 2 * FPS)]
        other = next(label for label in pictures if label != shot.shows)
        assert difference(middle, pictures[shot.shows]) < difference(middle, pictures[other])


def test_warnings_say_what_was_decided_without_the_prompt(
    live: LiveServer, key: str, refserver: RefServer
) -> None:
    task = render(
        live, key,
        prompt="rain on the window at night",
        image_urls=[refserver.file_url("photo.jpg"), refserver.file_url("square.webp")],
        duration=4, generate_audio=False,
    )  # fmt: skip
    info = task["task_info"]
    assert [shot["shows"] for shot in info["storyboard"]["shots"]] == ["@Image1", "@Image2"]
    assert "sounds" in info["storyboard"] and info["storyboard"]["sounds"] == []
    assert info["warnings"] == [
        "no reference was named in the prompt: @Image1 and @Image2 are shown in the order given",
    ]  # the ratio adaptive chose is no warning: it was decided as asked

    words_only = render(live, key, prompt="a calm sea at dawn", duration=-1)
    assert words_only["task_info"]["video_duration"] == 5
    drawn = words_only["task_info"]["storyboard"]["shots"]
    assert [(s["shows"], s["words"]) for s in drawn] == [
        ("the words: a sea at dawn", "a calm sea at dawn")
    ]
    assert words_only["task_info"]["warnings"] == [
        "no reference was given: the scene is drawn from the words",
        "aspect_ratio adaptive: 16:9, no picture to follow",
    ]


def test_the_sdk_parses_a_trimmed_clip_and_the_cli_prints_it(
    live: LiveServer, key: str, tmp_path: Path
) -> None:
    photo = make_image(tmp_path / "still.jpg", 320, 240, seed=4)
    clip = make_video(tmp_path / "long.mp4", 160, 120, seconds=8.0, audio=False)
    with Client(live.url, api_key=key) as client:
        task = client.videos.generate(
            "@Image1 lingers for 3 seconds, then @Video1",
            model=FAST, images=[photo], videos=[clip], resolution="480p",
            aspect_ratio="16:9", duration=4, generate_audio=False, seed=2,
        )  # fmt: skip
    assert isinstance(task, TaskObject)
    board = task.task_info.storyboard
    assert board is not None
    assert [(s.shows, s.camera) for s in board.shots][1] == ("@Video1", "the clip's own")
    shown = board.shots[1]
    assert shown.clip_from == 0.0 and shown.clip_to is not None and shown.clip_to < 8.0
    assert shown.clip_speed == 1.0, "trimmed, played as filmed"
    assert task.task_info.warnings is not None
    trimmed = [w for w in task.task_info.warnings if w.startswith("@Video1 was trimmed")]
    assert trimmed == [f"@Video1 was trimmed from 8.0 s to {shown.clip_to:.1f} s to fit its shot"]

    env = os.environ | {"R2V_BASE_URL": live.url, "R2V_API_KEY": key}
    printed = subprocess.run(
        [sys.executable, "-m", "r2v.cli", "tasks", "get", task.id],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    ).stdout  # fmt: skip
    lines = printed.splitlines()
    assert lines[0].startswith(task.id) and "completed" in lines[0]
    assert lines[1].split() == ["time", "shows", "camera", "sound"]
    first, second = board.shots
    assert lines[2].split() == [f"{first.start:.2f}-{first.end:.2f}", "s", "@Image1", first.camera]
    assert lines[3].split(maxsplit=3) == [
        f"{second.start:.2f}-{second.end:.2f}", "s", "@Video1", "the clip's own"
    ]  # fmt: skip
    assert f"  warning: {trimmed[0]}" in lines

    as_json = subprocess.run(
        [sys.executable, "-m", "r2v.cli", "tasks", "get", task.id, "--json"],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    ).stdout  # fmt: skip
    again = TaskObject.model_validate_json(as_json)
    assert (
        again.task_info.storyboard == board and again.task_info.warnings == task.task_info.warnings
    )


def test_unfinished_and_failed_tasks_carry_neither(
    tmp_path: Path, refserver: RefServer, live: LiveServer, key: str
) -> None:
    failed = render(live, key, prompt="@Image1", image_urls=[refserver.file_url("page.jpg")])
    assert failed["status"] == "failed"
    assert set(failed["task_info"]) == {"can_cancel", "estimated_time", "video_duration", "seed"}

    runtime = build_runtime(make_settings(tmp_path / "data", refserver, workers=0))
    try:
        with LiveServer(runtime) as idle, httpx.Client(base_url=idle.url) as client:
            headers = {"Authorization": f"Bearer {runtime.keys.create('idle').secret}"}
            body = {"model": FAST, "prompt": "a calm sea", "duration": 4}
            created = client.post("/v1/videos/generations", json=body, headers=headers).json()
            polled = client.get(f"/v1/tasks/{created['id']}", headers=headers).json()
            listed = client.get("/v1/tasks", headers=headers).json()["data"][0]
    finally:
        runtime.close()
    for task in (created, polled, listed):
        assert task["status"] == "pending"
        assert set(task["task_info"]) == {"can_cancel", "estimated_time", "video_duration", "seed"}


def test_the_plan_warns_of_audio_cut_short_and_clips_never_named(tmp_path: Path) -> None:
    # the same summary the renders above report, from the plan alone
    photo = make_image(tmp_path / "a.jpg", 640, 480, seed=1)
    music = make_wav(tmp_path / "music.wav", seconds=9.0)
    voice = make_wav(tmp_path / "voice.wav", seconds=2.0)
    request = engine_request(
        "@Image1 at dusk, @Audio1 as background music",
        aspect_ratio="1:1", duration=6, generate_audio=True, seed=1,
        images=(ImageInput(photo, 640, 480),),
        audios=(AudioInput(music, 9.0), AudioInput(voice, 2.0)),
    )  # fmt: skip
    summary = summarize(request, CompositorEngine().plan(request))
    assert [(s.plays, s.role, s.loops, s.end) for s in summary.sounds] == [
        ("@Audio1", "background", True, 6.0)
    ]
    assert summary.warnings == (
        "@Audio2 is not named in the prompt, so not heard",
        "@Audio1 was cut from 9.0 s to 6.0 s: the video ends",
    )

    silent = replace(request, generate_audio=False, duration=-1)
    said = summarize(silent, CompositorEngine().plan(silent)).warnings
    assert said == ("generate_audio is false: @Audio1 and @Audio2 are not heard",)
    # a length the references want beyond the API's range is cut, and said so
    long_audio = replace(silent, audios=(replace(silent.audios[0], duration=20.0),))
    said = summarize(long_audio, CompositorEngine().plan(long_audio)).warnings
    assert said[-1] == "duration -1: 15 s, from the length of @Audio1 (20.0 s, kept within 4-15 s)"


def test_the_stored_json_is_the_wire_shape(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "clip.mp4", 160, 120, seconds=3.0, audio=True)
    request = engine_request(
        "@Video1, then @Image1 in the camera of @Video1",
        duration=5, generate_audio=True, seed=3,
        images=(ImageInput(make_image(tmp_path / "a.png", 300, 200, "PNG"), 300, 200),),
        videos=(VideoInput(clip, 160, 120, 3.0, 24.0, True),),
    )  # fmt: skip
    summary = summarize(request, CompositorEngine().plan(request))
    board = Storyboard.model_validate_json(summary.to_json())  # validated, not constructed
    assert [(s.shows, s.camera) for s in board.shots] == [
        ("@Video1", "the clip's own"),
        ("@Image1", "follows @Video1"),
    ]
    assert {(s.plays, s.role) for s in board.sounds} == {
        ("@Video1", "clip"),
        ("score", "background"),
    }
    # the wire marks both as r2v's own
    fields = TaskInfo.model_json_schema()["properties"]
    assert fields["storyboard"]["x-r2v-extension"] is True
    assert fields["warnings"]["x-r2v-extension"] is True
    assert "x-r2v-extension" not in fields["seed"]


def migrate(database: Database, revision: str, *, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with database.write.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def columns(database: Database) -> set[str]:
    return {column["name"] for column in sa.inspect(database.write).get_columns("tasks")}


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_url")
        return url
    return f"sqlite:///{tmp_path / 'r2v.db'}"


def test_the_migration_keeps_old_tasks_and_stores_summaries(
    database_url: str, tmp_path: Path
) -> None:
    database = open_database(database_url)
    try:
        migrate(database, "0005")
        assert "render_summary" not in columns(database)
        now = time.time()
        with database.write.begin() as conn:  # a task finished before the upgrade
            conn.execute(
                sa.text(
                    "INSERT INTO tasks (id, key_id, model, status, progress, request, seed, "
                    "video_duration, estimated_time, created_at, updated_at, attempt) VALUES "
                    "(:id, 'k', :model, 'completed', 100, '{}', 1, 5, 3, :now, :now, 1)"
                ),
                {"id": "task-unified-1700000000-oldtask1", "model": FAST, "now": now},
            )
        upgrade(database)
        assert "render_summary" in columns(database)

        store = SqlStore(database)
        roomy = KeyLimits(rate_per_minute=100, burst=100, max_unfinished=100)
        old = store.get("task-unified-1700000000-oldtask1")
        assert old is not None and old.render_summary is None
        service = TaskService(
            store, LocalBlobStore(tmp_path / "blobs"), LinkSigner(b"k" * 32, 3600),
            lambda _request: 3, limits_of=lambda _key: roomy,
        )  # fmt: skip
        info = service.to_wire(old, "http://r2v.test").task_info
        assert info.storyboard is None and info.warnings is None

        owner = KeyService(SqlKeyStore(database)).create("m").key
        created = service.create(owner, CreateVideoRequest(model=FAST, prompt="fog"))
        claimed = store.claim("w", 30, now)
        assert claimed is not None and claimed.id == created.id
        summary = RenderSummary(warnings=("no reference was given: the scene is drawn from "
                                          "the words",))  # fmt: skip
        assert store.complete(
            created.id, claimed.attempt, result_key="r", video_duration=5, now=now,
            result_expires_at=now + 60, summary=summary.to_json(),
        )  # fmt: skip
        done = store.get(created.id)
        assert done is not None and done.render_summary == summary.to_json()
        wire = service.to_wire(done, "http://r2v.test").task_info
        assert wire.storyboard is not None and wire.storyboard.shots == []
        assert wire.warnings == list(summary.warnings)

        migrate(database, "0005", down=True)
        assert "render_summary" not in columns(database)
        upgrade(database)
        assert "render_summary" in columns(database)
    finally:
        database.dispose()


def test_the_table_gives_a_retimed_clip_its_speed() -> None:
    task = TaskObject.model_json_schema()["examples"][0]
    shots = [
        {"start": 0.0, "end": 1.5, "shows": "@Image1", "camera": "push_in"},
        {"start": 1.5, "end": 4.0, "shows": "@Video1", "camera": "the clip's own",
         "clip_from": 0.0, "clip_to": 1.25, "clip_speed": 0.5},
    ]  # fmt: skip
    task["task_info"]["storyboard"] = {"shots": shots}
    lines = storyboard_lines(TaskObject.model_validate(task))
    assert [line.split(maxsplit=3)[3] for line in lines[1:]] == [
        "push_in",
        "the clip's own at 0.5x",
    ]


def test_the_table_shows_a_look_column_only_for_graded_or_weathered_shots() -> None:
    task = TaskObject.model_json_schema()["examples"][0]
    shots = [
        {"start": 0.0, "end": 2.0, "shows": "@Image1", "camera": "push_in", "grade": "night",
         "weather": "rain"},
        {"start": 2.0, "end": 4.0, "shows": "@Image2", "camera": "static"},
    ]  # fmt: skip
    task["task_info"]["storyboard"] = {"shots": shots}
    lines = storyboard_lines(TaskObject.model_validate(task))
    assert lines[:3] == [
        "  time         shows    camera   look        sound",
        "  0.00-2.00 s  @Image1  push_in  night rain",
        "  2.00-4.00 s  @Image2  static",
    ]
    del shots[0]["grade"], shots[0]["weather"]
    plain = storyboard_lines(TaskObject.model_validate(task))
    assert "look" not in plain[0], "no column when nothing is graded"
