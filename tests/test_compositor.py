"""The compositor engine: its storyboard, and real renders checked by decoding them."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from r2v.engines.base import (
    AudioInput,
    Engine,
    EngineRequest,
    ImageInput,
    LocalContext,
    VideoInput,
)
from r2v.engines.compositor import CompositorEngine
from r2v.engines.compositor.motion import REST
from r2v.engines.compositor.storyboard import SoundPlan, Storyboard, build_storyboard
from r2v.errors import ReferenceInvalid, RequestCancelled
from r2v.media.decode import VideoFrameReader
from r2v.media.fit import fit_frame
from r2v.protocol import OUTPUT_SIZES
from tests.mediafiles import (
    decode_summary,
    decoded_audio,
    decoded_frames,
    engine_request,
    frame_hashes,
    make_image,
    make_mp3,
    make_video,
    make_wav,
)


@pytest.fixture(scope="module")
def refs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("refs")
    return {
        "landscape": ImageInput(make_image(root / "land.jpg", 800, 450, seed=1), 800, 450),
        "portrait": ImageInput(make_image(root / "port.png", 360, 640, "PNG", seed=2), 360, 640),
        "strip": ImageInput(make_image(root / "strip.jpg", 4000, 300, seed=3), 4000, 300),
        "square": ImageInput(make_image(root / "sq.webp", 400, 400, "WEBP", seed=4), 400, 400),
        "clip": VideoInput(
            make_video(root / "clip.mp4", 320, 240, seconds=2.0, pan_px_per_frame=3, seed=5),
            320, 240, 2.0, 24.0, True,
        ),
        "silent_clip": VideoInput(
            make_video(root / "silent.mov", 320, 180, 3.0, audio=False, container="mov", seed=6),
            320, 180, 3.0, 24.0, False,
        ),
        "wav": AudioInput(make_wav(root / "tone.wav", seconds=6.0, freq=330.0), 6.0),
        "mp3": AudioInput(make_mp3(root / "tone.mp3", seconds=2.0), 2.0),
    }  # fmt: skip


def request(**changes: Any) -> EngineRequest:
    defaults: dict[str, Any] = {"prompt": "A quiet morning.", "generate_audio": True, "seed": 42}
    return engine_request(**(defaults | changes))


def render(req: EngineRequest, workspace: Path) -> tuple[Path, LocalContext]:
    workspace.mkdir(parents=True, exist_ok=True)
    context = LocalContext(workspace)
    result = CompositorEngine().generate(req, context)
    assert result.path.parent == workspace and result.frames == req.duration * 24
    return result.path, context


def test_engine_satisfies_the_protocol() -> None:
    engine: Engine = CompositorEngine()
    assert engine.name == "compositor"


# --- the storyboard -------------------------------------------------------------------


def test_shots_follow_the_prompt_then_list_order(refs: dict[str, Any]) -> None:
    board = build_storyboard(
        request(
            prompt="@Video1 opens; then @Image3 and again @Video1, then @image 1.",
            images=(refs["landscape"], refs["portrait"], refs["square"]),
            videos=(refs["clip"], refs["silent_clip"]),
            duration=8,
        )
    )
    # A picture named again later is shown again; those never named follow, images first.
    labels = [s.label for s in board.shots]
    assert labels == ["@Video1", "@Image3", "@Video1", "@Image1", "@Image2", "@Video2"]


def test_shots_tile_the_video_with_crossfades(refs: dict[str, Any]) -> None:
    board = build_storyboard(
        request(duration=7, images=(refs["landscape"], refs["portrait"]), videos=(refs["clip"],))
    )
    assert board.frames == 7 * 24
    assert board.shots[0].start == 0 and board.shots[-1].end == board.frames
    for previous, shot in zip(board.shots, board.shots[1:], strict=False):
        assert shot.fade_in > 0 and shot.start == previous.end - shot.fade_in
        assert shot.length > 2 * shot.fade_in
    for frame in range(board.frames):
        assert 1 <= len(board.live(frame)) <= 2


def test_first_and_last_frame_pins(refs: dict[str, Any]) -> None:
    board = build_storyboard(
        request(
            prompt="A product film. @Image1 flies by, @Image3 as the last frame, "
            "@Image2 as the first frame.",
            images=(refs["landscape"], refs["portrait"], refs["square"]),
        )
    )
    assert [s.label for s in board.shots] == ["@Image2", "@Image1", "@Image3"]
    first, last = board.shots[0], board.shots[-1]
    assert first.pin == "first" and first.motion is not None and first.motion.at(0.0) == REST
    assert last.pin == "last" and last.motion is not None and last.motion.at(1.0) == REST


@pytest.mark.parametrize(
    ("changes", "seconds"),
    [
        ({"prompt": "@Audio2 over @Image1", "audios": ("wav", "mp3")}, 2 + 2),  # clamped to 4
        ({"prompt": "@Image1 with @Audio1", "audios": ("wav", "mp3")}, 6),
        ({"prompt": "@Image1", "audios": ("wav",), "generate_audio": False}, 6),
        ({"prompt": "@Video1 then @Video2", "videos": ("clip", "silent_clip")}, 5),
        ({"prompt": "three stills", "images": ("landscape", "portrait", "square")}, 9),
        ({"prompt": "many", "images": ("landscape",) * 7}, 15),
        ({"prompt": "text only"}, 5),
    ],
)
def test_duration_minus_one_choices(
    refs: dict[str, Any], changes: dict[str, Any], seconds: int
) -> None:
    resolved = {
        key: tuple(refs[name] for name in value) if key in ("images", "videos", "audios") else value
        for key, value in changes.items()
    }
    if "images" not in resolved and "videos" not in resolved:
        resolved["images"] = (refs["landscape"],) if "audios" in resolved else ()
    board = build_storyboard(request(duration=-1, **resolved))
    assert board.frames == seconds * 24


def test_sound_plan_preferences(refs: dict[str, Any]) -> None:
    def plan(**changes: Any) -> SoundPlan:
        return build_storyboard(request(images=(refs["landscape"],), **changes)).sound

    assert plan(prompt="@Audio2 and @Audio1", audios=(refs["wav"], refs["mp3"])).indices == (1, 0)
    assert plan(audios=(refs["mp3"], refs["wav"])).indices == (0, 1)  # none named: all play
    videos = (refs["silent_clip"], refs["clip"])
    own = plan(prompt="@Video2 then @Video1", videos=videos)
    assert own.source == "video"
    assert [c.label for c in own.cues] == ["@Video2", "score"]  # only the clip with sound
    assert plan(videos=(refs["silent_clip"],)).source == "synth"
    assert plan(generate_audio=False, audios=(refs["wav"],)).source == "none"


def test_adaptive_ratio_and_sizes(refs: dict[str, Any]) -> None:
    images = (refs["landscape"], refs["portrait"])
    board = build_storyboard(request(aspect_ratio="adaptive", prompt="@Image2", images=images))
    assert board.size == OUTPUT_SIZES["480p"]["9:16"]
    board = build_storyboard(request(aspect_ratio="adaptive", resolution="720p", images=images))
    assert board.size == OUTPUT_SIZES["720p"]["16:9"]


def test_storyboard_is_deterministic(refs: dict[str, Any]) -> None:
    req = request(images=(refs["landscape"], refs["square"]), duration=8)
    assert build_storyboard(req) == build_storyboard(req)
    other = build_storyboard(dataclasses.replace(req, seed=43))
    assert [s.motion for s in other.shots] != [s.motion for s in build_storyboard(req).shots]


# --- renders --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resolution", "ratio", "image"),
    [("480p", "9:16", "strip"), ("480p", "21:9", "portrait"), ("480p", "1:1", "landscape")],
)
def test_render_exact_size_rate_and_codecs(
    refs: dict[str, Any], tmp_path: Path, resolution: str, ratio: str, image: str
) -> None:
    path, context = render(
        request(resolution=resolution, aspect_ratio=ratio, images=(refs[image],)), tmp_path
    )
    summary = decode_summary(path)
    assert (summary.width, summary.height) == OUTPUT_SIZES[resolution][ratio]
    assert summary.fps == 24 and summary.video_frames == 96
    assert summary.video_duration == pytest.approx(4.0)
    assert (summary.video_codec, summary.pix_fmt, summary.audio_codec) == ("h264", "yuv420p", "aac")
    assert abs(summary.audio_duration - 4.0) <= 1 / 24
    assert context.reported == sorted(context.reported) and context.reported[-1] == 1.0
    assert path.read_bytes().find(b"moov") < path.read_bytes().find(b"mdat")


def test_render_720p_standard(refs: dict[str, Any], tmp_path: Path) -> None:
    req = request(
        preset="standard",
        resolution="720p",
        aspect_ratio="adaptive",
        images=(refs["square"],),
        videos=(refs["clip"],),
    )
    summary = decode_summary(render(req, tmp_path)[0])
    assert (summary.width, summary.height) == OUTPUT_SIZES["720p"]["1:1"]
    assert summary.video_frames == 96 and summary.has_audio


def test_no_audio_stream_without_generate_audio(refs: dict[str, Any], tmp_path: Path) -> None:
    req = request(generate_audio=False, images=(refs["landscape"],), audios=(refs["wav"],))
    summary = decode_summary(render(req, tmp_path)[0])
    assert not summary.has_audio and summary.video_frames == 96


def test_same_seed_same_frames_other_seed_other_frames(
    refs: dict[str, Any], tmp_path: Path
) -> None:
    req = request(images=(refs["landscape"], refs["square"]), generate_audio=False)
    first = frame_hashes(render(req, tmp_path / "a")[0])
    again = frame_hashes(render(req, tmp_path / "b")[0])
    other = frame_hashes(render(dataclasses.replace(req, seed=7), tmp_path / "c")[0])
    assert first == again
    assert first != other


def test_same_seed_same_frames_and_sound_for_a_complex_request(
    refs: dict[str, Any], tmp_path: Path
) -> None:
    req = request(
        preset="standard",
        prompt="@Image1 as the first frame, camera of @Video1. @Video2, then @Image2 with "
        "@Audio1 as background music. @Image3 as the last frame.",
        images=(refs["landscape"], refs["portrait"], refs["square"]),
        videos=(refs["clip"], refs["silent_clip"]),
        audios=(refs["wav"],),
        duration=5,
    )
    first, again = render(req, tmp_path / "a")[0], render(req, tmp_path / "b")[0]
    assert frame_hashes(first) == frame_hashes(again)
    sounds = [decoded_audio(path)[0].tobytes() for path in (first, again)]
    assert sounds[0] == sounds[1]


def test_text_only_render_is_animated_and_seeded(tmp_path: Path) -> None:
    req = request(prompt="A blue ocean at night. Waves roll in.", generate_audio=True)
    path, _ = render(req, tmp_path / "a")
    frames = decoded_frames(path, every=12)
    assert all(frame.std() > 3 for frame in frames)  # not a flat colour
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 1
    summary = decode_summary(path)
    assert summary.has_audio and abs(summary.audio_duration - 4.0) <= 1 / 24
    other = render(dataclasses.replace(req, seed=1), tmp_path / "b")[0]
    assert frame_hashes(path)[:3] != frame_hashes(other)[:3]


def test_image_shot_moves_every_frame(refs: dict[str, Any], tmp_path: Path) -> None:
    path, _ = render(request(images=(refs["landscape"],), generate_audio=False), tmp_path)
    frames = [frame.astype(np.int16) for frame in decoded_frames(path)]
    steps = [np.abs(b - a).mean() for a, b in zip(frames, frames[1:], strict=False)]
    assert min(steps) > 0.05, "a still picture must keep moving"
    assert np.abs(frames[-1] - frames[0]).mean() > 3 * float(np.median(steps))


def test_reference_video_content_appears(refs: dict[str, Any], tmp_path: Path) -> None:
    clip = refs["clip"]
    req = request(prompt="Follow @Video1.", aspect_ratio="adaptive", videos=(clip,))
    board: Storyboard = build_storyboard(req)
    assert board.size == OUTPUT_SIZES["480p"]["4:3"] and board.shots[0].kind == "video"
    output = decoded_frames(render(req, tmp_path)[0])
    with VideoFrameReader(clip.path) as reader:
        for index in (0, 30, 60, 95):
            expected = fit_frame(reader.blended_at(board.shots[0].clip_time(index)), board.size)
            difference = np.abs(output[index].astype(int) - expected.astype(int)).mean()
            assert difference < 6, f"frame {index} differs by {difference:.1f}"
    # The 2 s clip is the only picture of a 4 s video: it is slowed to fill it, to 0.5x.
    assert abs(board.shots[0].clip_speed - 0.5) < 1e-9


@pytest.mark.parametrize("audio", ["wav", "mp3"])
def test_audio_reference_becomes_the_soundtrack(
    refs: dict[str, Any], tmp_path: Path, audio: str
) -> None:
    req = request(
        prompt="@Image1 with @Audio1", images=(refs["square"],), audios=(refs[audio],), duration=5
    )
    summary = decode_summary(render(req, tmp_path)[0])
    assert summary.has_audio and (summary.audio_rate, summary.audio_channels) == (48000, 2)
    assert abs(summary.audio_duration - 5.0) <= 1 / 24  # the 2 s MP3 loops, the 6 s WAV is cut
    assert summary.video_frames == 120


def test_corrupt_image_is_reference_invalid(refs: dict[str, Any], tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    req = request(
        prompt="@Image1 then @Image2",
        images=(refs["landscape"], ImageInput(broken, 640, 480)),
    )
    with pytest.raises(ReferenceInvalid, match="@Image2"):
        CompositorEngine().generate(req, LocalContext(tmp_path))
    assert not (tmp_path / "compositor.mp4").exists()


def test_cancellation_propagates_and_leaves_no_file(refs: dict[str, Any], tmp_path: Path) -> None:
    class Cancelling(LocalContext):
        def progress(self, fraction: float) -> None:
            super().progress(fraction)
            if fraction > 0.3:
                raise RequestCancelled("cancelled by the client")

    context = Cancelling(tmp_path)
    with pytest.raises(RequestCancelled):
        CompositorEngine().generate(request(videos=(refs["clip"],)), context)
    assert not (tmp_path / "compositor.mp4").exists()


def test_estimate_grows_with_the_work(refs: dict[str, Any]) -> None:
    engine = CompositorEngine()
    small = engine.estimate_seconds(request(images=(refs["landscape"],)))
    large = engine.estimate_seconds(
        request(images=(refs["landscape"],), duration=15, resolution="720p", preset="standard")
    )
    assert 1 <= small < large
