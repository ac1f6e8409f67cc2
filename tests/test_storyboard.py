"""The compositor's plan, read from English and Chinese prompts before any pixel is drawn."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from r2v.engines.base import AudioInput, EngineRequest, ImageInput, VideoInput
from r2v.engines.compositor.motion import REST
from r2v.engines.compositor.prompt import read_prompt
from r2v.engines.compositor.storyboard import Storyboard, build_storyboard
from r2v.protocol import OUTPUT_SIZES
from tests.mediafiles import (
    engine_request,
    make_beats_wav,
    make_camera_video,
    make_image,
    make_video,
    make_wav,
)


@pytest.fixture(scope="module")
def refs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("plan")
    return {
        "wide": ImageInput(make_image(root / "wide.jpg", 480, 270, seed=1), 480, 270),
        "tall": ImageInput(make_image(root / "tall.png", 270, 480, "PNG", seed=2), 270, 480),
        "square": ImageInput(make_image(root / "sq.jpg", 300, 300, seed=3), 300, 300),
        "clip": VideoInput(
            make_video(root / "clip.mp4", 320, 240, 2.0, seed=4), 320, 240, 2.0, 24.0, True
        ),
        "pan": VideoInput(
            make_camera_video(root / "pan.mp4", 320, 180, 2.0, pan=(3.0, 0.0), seed=5),
            320, 180, 2.0, 24.0, False,
        ),
        "tone": AudioInput(make_wav(root / "tone.wav", seconds=6.0), 6.0),
        "beats": AudioInput(make_beats_wav(root / "beats.wav", 5.0, [1.45, 3.2]), 5.0),
    }  # fmt: skip


def request(refs: dict[str, Any], prompt: str, **changes: Any) -> EngineRequest:
    kinds = {"images": ("wide", "tall", "square"), "videos": (), "audios": ()}
    resolved = {
        key: tuple(refs[name] for name in changes.pop(key, default))
        for key, default in kinds.items()
    }
    return engine_request(prompt, **({"duration": 6, "generate_audio": True} | resolved | changes))


def labels(board: Storyboard) -> list[str]:
    return [shot.label for shot in board.shots]


# --- reading the prompt -------------------------------------------------------------------


def test_english_prompt_is_read_into_beats_with_their_cues() -> None:
    reading = read_prompt(
        "A product film. @Image2 as the first frame, the camera slowly pushing in. "
        "Then @Image1, panning left quickly; @Image3 briefly. @Audio1 as background music.",
        images=3,
        videos=0,
        audios=1,
    )
    assert [(b.label, set(b.pins)) for b in reading.beats] == [
        ("@Image2", {"first"}),
        ("@Image1", set()),
        ("@Image3", set()),
    ]
    first, second, third = reading.beats
    assert first.move is not None and (first.move.kind, first.move.speed < 1) == ("push_in", True)
    assert second.move is not None and (second.move.kind, second.move.speed > 1) == (
        "pan_left",
        True,
    )
    assert third.emphasis < 1 and third.weight < first.weight
    assert reading.background == (0,) and reading.sentences == 5  # ";" ends one too


def test_chinese_prompt_is_read_into_beats_with_their_cues() -> None:
    reading = read_prompt(
        "@Image1作为首帧，镜头缓缓推近，然后@Image2向左摇，最后以@Image3结尾。@Audio1作为背景音乐",
        images=3,
        videos=0,
        audios=1,
    )
    beats = reading.beats
    assert [b.label for b in beats] == ["@Image1", "@Image2", "@Image3"]
    assert beats[0].pins == {"first"} and beats[2].pins == {"last"}
    assert beats[0].move is not None and beats[0].move.kind == "push_in" and beats[0].move.speed < 1
    assert beats[1].move is not None and beats[1].move.kind == "pan_left"
    assert reading.background == (0,)


@pytest.mark.parametrize(
    ("prompt", "first", "last"),
    [
        ("@Image1 as the first frame and @Image2 as the last frame", "@Image1", "@Image2"),
        ("The last frame is @Image1, the first frame is @Image2", "@Image2", "@Image1"),
        ("first frame: @Image3. ending frame: @Image1", "@Image3", "@Image1"),
        ("首帧为@Image1尾帧为@Image2", "@Image1", "@Image2"),
        ("@Image2作为尾帧，@Image3作为首帧", "@Image3", "@Image2"),
        ("以@图片2作为首帧，@Image1", "@Image2", None),
        ("Start with @Image3 and end on @Image2", "@Image3", "@Image2"),
        ("以@Image2开头，以@Image1结尾", "@Image2", "@Image1"),
        ("The opening frame is @Image3; @Image1 closes", "@Image3", None),
        ("@Image1 runs, 尾帧是@Image2", None, "@Image2"),
    ],
)
def test_pin_phrases_find_their_picture(
    refs: dict[str, Any], prompt: str, first: str | None, last: str | None
) -> None:
    board = build_storyboard(request(refs, prompt))
    opening, closing = board.shots[0], board.shots[-1]
    if first is not None:
        assert opening.label == first and "first" in opening.pins
    else:
        assert "first" not in opening.pins
    if last is not None:
        assert closing.label == last and "last" in closing.pins


def test_motion_transfer_phrases_name_the_video() -> None:
    for prompt in (
        "@Image1 walks in, camera of @Video1",
        "Follow the motion of @Video1. @Image1 at dusk.",
        "@Image1 with @Video1's camera movement",
        "@Image1, use @Video1 as the camera reference",
        "参考@Video1的运镜，@Image1中的女孩在跳舞",
        "@Image1，运镜参考@Video1",
        "@Image1，@Video1的镜头运动",
    ):
        reading = read_prompt(prompt, images=1, videos=1, audios=0)
        follows = reading.camera_of if reading.camera_of is not None else reading.beats[0].camera_of
        assert follows == 0 and reading.motion_sources == {0}, prompt
        assert [b.label for b in reading.beats] == ["@Image1"], prompt
    plain = read_prompt("@Video1 shows a dancer, then @Image1", images=1, videos=1, audios=0)
    assert plain.motion_sources == frozenset() and len(plain.beats) == 2


# --- shots ----------------------------------------------------------------------------------


def test_mentioned_first_then_unmentioned_in_order_with_pinned_ends(refs: dict[str, Any]) -> None:
    board = build_storyboard(
        request(
            refs,
            "@Video1 dances, @Image3 as the last frame.",
            videos=("clip",),
            audios=(),
        )
    )
    assert labels(board) == ["@Video1", "@Image1", "@Image2", "@Image3"]
    assert board.shots[-1].motion is not None and board.shots[-1].motion.at(1.0) == REST


def test_a_picture_pinned_first_and_last_opens_and_closes(refs: dict[str, Any]) -> None:
    board = build_storyboard(request(refs, "@Image1 as the first and last frame, @Image2 between"))
    assert labels(board) == ["@Image1", "@Image2", "@Image3", "@Image1"]
    assert board.shots[0].pins == {"first"} and board.shots[-1].pins == {"last"}
    alone = build_storyboard(request(refs, "首尾帧都是@Image1", images=("wide",)))
    path = alone.shots[0].motion
    assert path is not None and path.at(0.0) == REST and path.at(1.0) == REST
    assert path.at(0.5).zoom > 1.02  # it still moves in between


def test_shot_lengths_follow_clause_weights(refs: dict[str, Any]) -> None:
    board = build_storyboard(
        request(
            refs,
            "@Image1 briefly. @Image2 lingers on the long empty beach while the grey waves "
            "roll in slowly and the gulls circle overhead. @Image3 at night.",
        )
    )
    shown = [b.cut - a.cut for a, b in zip(board.shots, board.shots[1:], strict=False)]
    shown.append(board.frames - board.shots[-1].cut)
    assert shown[1] > 2 * shown[2] > 2 * shown[0]
    assert sum(shown) == board.frames


def test_chinese_timing_and_emphasis() -> None:
    reading = read_prompt("0-3秒：@Image1 走进来，3-5秒：@Image2一闪而过，@Image3停留", 3, 0, 0)
    first, second, third = reading.beats
    assert (first.seconds, second.seconds, reading.timeline) == (3.0, 2.0, 5.0)
    assert second.emphasis < 1 < third.emphasis
    assert read_prompt("@Image1 持续2秒", 1, 0, 0).beats[0].seconds == 2.0


def test_stated_seconds_and_time_ranges(refs: dict[str, Any]) -> None:
    board = build_storyboard(
        request(
            refs,
            "@Image1 for 1 second, then @Image2 for 3 seconds.",
            duration=4,
            images=("wide", "tall"),
        )
    )
    assert [shot.cut for shot in board.shots] == [0, 24]
    timed = build_storyboard(
        request(
            refs,
            "0-2s: @Image1 walks in. 2-6s: @Image2 waves.",
            duration=-1,
            images=("wide", "tall"),
        )
    )
    assert timed.frames == 6 * 24 and [shot.cut for shot in timed.shots] == [0, 48]


def test_camera_reference_video_moves_the_images_and_is_not_shown(refs: dict[str, Any]) -> None:
    board = build_storyboard(
        request(
            refs,
            "Follow the camera of @Video1. @Image1 at dusk.",
            videos=("pan",),
            images=("wide",),
        )
    )
    assert labels(board) == ["@Image1"]
    shot = board.shots[0]
    assert shot.camera_of == 0 and shot.motion is not None and shot.motion.kind == "transfer"
    assert shot.motion.end.x > shot.motion.start.x + 0.1  # the video pans right, so does this
    alone = build_storyboard(
        request(refs, "Follow the camera of @Video1.", videos=("pan",), images=())
    )
    assert labels(alone) == ["@Video1"]


def test_prompted_moves_override_the_seeded_ones(refs: dict[str, Any]) -> None:
    board = build_storyboard(
        request(refs, "@Image1, the camera pans right. @Image2 固定镜头. @Image3 拉远", duration=9)
    )
    kinds = [shot.motion.kind for shot in board.shots if shot.motion is not None]
    assert kinds == ["pan_right", "static", "pull_out"]
    pan = board.shots[0].motion
    assert pan is not None and pan.end.x > pan.start.x


def test_video_shots_are_retimed_to_fit(refs: dict[str, Any]) -> None:
    silent = build_storyboard(
        request(refs, "@Video1", videos=("clip",), images=(), duration=4, generate_audio=False)
    )
    assert silent.shots[0].clip_speed == pytest.approx(0.5)  # 2 s slowed to fill 4 s
    heard = build_storyboard(request(refs, "@Video1", videos=("clip",), images=(), duration=4))
    assert heard.shots[0].clip_speed == pytest.approx(0.5)  # its sound stretched, pitch kept
    closing = build_storyboard(
        request(refs, "@Image1, @Video1 as the last frame", videos=("clip",), images=("wide",))
    )
    last = closing.shots[-1]
    assert last.clip_time(last.end - 1) >= 2.0 - 1 / 24  # the final frame is the clip's last


@pytest.mark.parametrize(
    ("prompt", "images", "videos", "ratio"),
    [
        ("@Image2 then @Image1", ("wide", "tall"), (), "9:16"),
        ("@图片2 then @Image1", ("wide", "tall"), (), "9:16"),
        ("nothing named", ("square", "wide"), (), "1:1"),
        ("@Video1 then @Image1", ("tall",), ("clip",), "4:3"),
        ("text only", (), (), "16:9"),
    ],
)
def test_adaptive_ratio_follows_the_first_picture_mentioned(
    refs: dict[str, Any], prompt: str, images: tuple[str, ...], videos: tuple[str, ...], ratio: str
) -> None:
    board = build_storyboard(
        request(refs, prompt, aspect_ratio="adaptive", images=images, videos=videos)
    )
    assert board.size == OUTPUT_SIZES["480p"][ratio] and board.aspect_ratio == ratio


# --- sound ----------------------------------------------------------------------------------


def test_background_music_spans_and_clause_audio_plays_under_its_shot(refs: dict[str, Any]) -> None:
    spans = build_storyboard(
        request(refs, "@Image1, @Image2. @Audio1 as background music.", audios=("tone",))
    )
    assert [(c.label, c.start, c.end, c.role, c.loop) for c in spans.sound.cues] == [
        ("@Audio1", 0, spans.frames, "background", True)
    ]
    under = build_storyboard(
        request(refs, "@Image1 walks in. @Image2 with @Audio1.", audios=("tone",))
    )
    (cue,) = under.sound.cues
    assert (cue.label, cue.role, cue.start) == ("@Audio1", "shot", under.shots[1].cut)
    assert cue.end == under.frames


def test_speech_spans_the_video_once_and_music_loops(refs: dict[str, Any]) -> None:
    for prompt in ("@Image1, @Image2. @Audio1 is the narration.", "@Image1。@Audio1作为旁白。"):
        (cue,) = build_storyboard(request(refs, prompt, audios=("tone",))).sound.cues
        assert (cue.role, cue.start, cue.loop) == ("background", 0, False), prompt
    music = build_storyboard(
        request(refs, "@Image1 dances to the music of @Audio1", audios=("tone",))
    )
    assert music.sound.cues[0].loop


def test_sound_sources_in_order_of_preference(refs: dict[str, Any]) -> None:
    unnamed = build_storyboard(request(refs, "@Image1", audios=("tone", "beats")))
    assert unnamed.sound.indices == (0, 1) and unnamed.sound.source == "audio"
    own = build_storyboard(
        request(refs, "@Video1 then @Image1", videos=("clip",), images=("wide",))
    )
    assert [(c.source, c.role) for c in own.sound.cues] == [
        ("video", "shot"),
        ("score", "background"),
    ]
    assert own.sound.cues[0].end == own.shots[0].end
    nothing = build_storyboard(request(refs, "@Image1", videos=("pan",)))
    assert nothing.sound.source == "synth"
    muted = build_storyboard(request(refs, "@Image1", audios=("tone",), generate_audio=False))
    assert muted.sound.source == "none" and muted.sound.cues == ()


def test_cuts_snap_to_the_music_onsets(refs: dict[str, Any]) -> None:
    board = build_storyboard(
        request(
            refs,
            "@Image1, @Image2, @Image3. @Audio1 as background music.",
            audios=("beats",),
            duration=5,
        )
    )
    assert [round(t, 2) for t in board.sound.onsets[:2]] == pytest.approx([1.45, 3.2], abs=0.02)
    assert [shot.cut for shot in board.shots[1:]] == [round(1.45 * 24), round(3.2 * 24)]
    assert [shot.fade_in for shot in board.shots[1:]] == [0, 0]  # hard cuts on the beat
    plain = build_storyboard(request(refs, "@Image1, @Image2, @Image3.", duration=5))
    assert all(shot.fade_in > 0 for shot in plain.shots[1:])


@pytest.mark.parametrize(
    ("prompt", "audios", "videos", "images", "seconds"),
    [
        ("@Image1 with @Audio1", ("tone",), (), ("wide",), 6),
        ("@Image1. @Audio2 as background music", ("tone", "beats"), (), ("wide",), 5),
        ("@Video1 then @Image1", (), ("clip",), ("wide",), 5),
        ("three stills", (), (), ("wide", "tall", "square"), 9),
        ("text only", (), (), (), 5),
    ],
)
def test_duration_minus_one(
    refs: dict[str, Any],
    prompt: str,
    audios: tuple[str, ...],
    videos: tuple[str, ...],
    images: tuple[str, ...],
    seconds: int,
) -> None:
    board = build_storyboard(
        request(refs, prompt, duration=-1, audios=audios, videos=videos, images=images)
    )
    assert board.frames == seconds * 24


def test_the_plan_is_deterministic_and_seeded(refs: dict[str, Any], tmp_path: Path) -> None:
    req = request(
        refs, "@Image1, @Image2, @Image3. @Audio1 as background music.", audios=("beats",)
    )
    assert build_storyboard(req) == build_storyboard(req)
    other = build_storyboard(dataclasses.replace(req, seed=8))
    assert [s.motion for s in other.shots] != [s.motion for s in build_storyboard(req).shots]
    assert not list(tmp_path.iterdir())  # planning writes nothing
