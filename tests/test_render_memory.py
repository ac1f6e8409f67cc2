"""A render's memory is bounded whatever the references: the worst ones the server accepts.

Nine 50-megapixel images, three videos 4096 pixels on their longer side and 15 s of audio,
all used by one 720p render, must raise a fresh process's resident memory by at most
`BUDGET_MB` above what it holds idle (after imports and a small warm-up render). The
render runs in a child process (this module run as a script), so the peak it reports is
its own and not the test runner's. The peak is the kernel's high-water mark of the
process's memory (VmHWM), reset once the process is idle: `ru_maxrss` would not do, as
Linux carries it across `exec` from the process that spawned the child.

The smaller tests pin down how the bound is kept: pictures and video frames are decoded no
larger than their fit into the output needs (and look the same as fitting them whole), and
no picture is decoded at full size while a reference video's decoder is open.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from PIL import Image

from r2v.engines.base import (
    AudioInput,
    EngineRequest,
    ImageInput,
    LocalContext,
    Preset,
    VideoInput,
)
from r2v.engines.compositor import CompositorEngine
from r2v.engines.compositor.shots import Plates, open_source
from r2v.engines.compositor.storyboard import build_storyboard
from r2v.media.decode import VideoFrameReader, load_image
from r2v.media.fit import fit_frame
from tests.bigmedia import make_big_png, make_big_video
from tests.mediafiles import (
    decode_summary,
    engine_request,
    make_image,
    make_video,
    make_wav,
    pattern,
)

BUDGET_MB = 400
"""Peak resident memory a render may add to the idle process."""

IMAGE_SIZE = (8660, 5773)  # 49.99 megapixels, under the 50 MP cap
VIDEO_SIZES = ((4096, 4096), (4096, 2304), (2304, 4096))  # 1 s each, 3 s in all
PROMPT = (
    "@Image1 as the first frame, following the camera of @Video1. @Image2 follows the"
    " camera of @Video2. @Image3 with the camera of @Video3. Then @Video1, @Image4,"
    " @Video2, @Image5, @Video3, @Image6. @Image7, @Image8. @Image9 as the last frame."
    " @Audio1 as background music."
)
OUTPUT = (1504, 640)  # 720p 21:9, the largest frame of the table
SECONDS = 15


@pytest.fixture(scope="module")
def worst_refs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("worst")
    picture = make_big_png(root / "big.png", *IMAGE_SIZE)
    return {
        "images": [str(picture)] * 9,  # one file nine times: decoded nine times all the same
        "videos": [
            str(make_big_video(root / f"clip{n}.mp4", w, h, seconds=1.0, seed=n))
            for n, (w, h) in enumerate(VIDEO_SIZES)
        ],
        "audio": str(make_wav(root / "music.wav", seconds=SECONDS, rate=48000, channels=2)),
        "warmup": str(make_image(root / "small.jpg", 320, 240)),
        "workspace": str(root),
    }


def worst_request(refs: dict[str, Any], preset: Preset) -> EngineRequest:
    return engine_request(
        PROMPT,
        preset=preset,
        resolution="720p",
        aspect_ratio="21:9",
        duration=SECONDS,
        generate_audio=True,
        seed=11,
        images=tuple(ImageInput(Path(p), *IMAGE_SIZE) for p in refs["images"]),
        videos=tuple(
            VideoInput(Path(p), w, h, 1.0, 24.0, False)
            for p, (w, h) in zip(refs["videos"], VIDEO_SIZES, strict=True)
        ),
        audios=(AudioInput(Path(refs["audio"]), float(SECONDS)),),
    )


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/status (Linux)")
@pytest.mark.parametrize(
    "preset", ["fast", pytest.param("standard", marks=pytest.mark.slow)]
)  # fmt: skip
def test_worst_references_render_within_the_memory_budget(
    worst_refs: dict[str, Any], preset: Preset
) -> None:
    # Every reference is on screen, and every video's camera moves a picture.
    board = CompositorEngine().plan(worst_request(worst_refs, preset))
    shown = {shot.label for shot in board.shots}
    assert shown >= {f"@Image{n}" for n in range(1, 10)} | {"@Video1", "@Video2", "@Video3"}
    assert {shot.camera_of for shot in board.shots} >= {0, 1, 2}
    assert [cue.index for cue in board.sound.cues if cue.source == "audio"] == [0]

    child = subprocess.run(
        [sys.executable, "-m", "tests.test_render_memory", json.dumps(worst_refs), preset],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])

    above = report["peak_mb"] - report["baseline_mb"]
    assert above <= BUDGET_MB, f"the render raised the process by {above:.0f} MB: {report}"
    summary = decode_summary(Path(report["path"]))
    assert (summary.width, summary.height) == OUTPUT
    assert summary.video_frames == SECONDS * 24 and summary.fps == 24
    assert summary.has_audio and abs(summary.audio_duration - SECONDS) < 0.1


# --- how the bound is kept --------------------------------------------------------------


def _write_picture(path: Path, kind: str) -> Path:
    """A 1200x800 picture (its right half opaque, its left transparent where it has alpha)."""
    picture = pattern(1200, 800, seed=5)
    alpha = np.zeros((800, 1200), dtype=np.uint8)
    alpha[:, 600:] = 255
    rgba = Image.fromarray(np.dstack([picture, alpha]), "RGBA")
    if kind == "rgb.png":
        Image.fromarray(picture).save(path)
    elif kind == "rgba.png":
        rgba.save(path)
    elif kind == "palette.png":
        Image.fromarray(picture).quantize(32).save(path, transparency=0)
    elif kind == "grey16.png":
        Image.fromarray(picture[..., 1].astype(np.uint16) * 257).save(path)
    elif kind == "photo.jpg":
        Image.fromarray(picture).save(path, quality=92)
    elif kind == "lossy.webp":
        Image.fromarray(picture).save(path, quality=92)
    elif kind == "alpha.webp":
        rgba.save(path, lossless=True)
    else:  # an animation, which FFmpeg cannot decode and Pillow then does
        frames = [Image.fromarray(picture), Image.fromarray(picture[::-1].copy())]
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    return path


@pytest.mark.parametrize(
    "kind",
    ["rgb.png", "rgba.png", "palette.png", "grey16.png", "photo.jpg", "lossy.webp",
     "alpha.webp", "animated.webp"],
)  # fmt: skip
def test_pictures_decode_no_larger_than_their_fit_needs(tmp_path: Path, kind: str) -> None:
    path = _write_picture(tmp_path / kind, kind)
    size = (300, 160)  # a 3:2 picture is cropped to it, drawn at a quarter of its width
    reduced = load_image(path, draft_size=size)
    assert reduced.shape == (200, 300, 3) and reduced.flags.c_contiguous
    whole = fit_frame(load_image(path), size)
    difference = np.abs(fit_frame(reduced, size).astype(int) - whole)
    assert difference.mean() < 1.0 and np.percentile(difference, 99) <= 6
    if kind in ("rgba.png", "alpha.webp"):  # transparent areas are black, opaque ones kept
        assert reduced[:, :140].max() == 0 and reduced[:, 160:].mean() > 60


def test_video_frames_convert_no_larger_than_their_fit_needs(tmp_path: Path) -> None:
    path = make_video(tmp_path / "clip.mp4", 640, 480, seconds=1.0, audio=False)
    with VideoFrameReader(path) as whole, VideoFrameReader(path, draft_size=(160, 90)) as small:
        for seconds in (0.0, 0.5, 0.9):
            frame = small.frame_at(seconds)
            assert frame.shape == (120, 160, 3)  # 4:3 is cropped to 16:9: it covers 160 wide
            expected = fit_frame(whole.frame_at(seconds), (160, 90))
            assert np.abs(fit_frame(frame, (160, 90)).astype(int) - expected).mean() < 2.0
    with VideoFrameReader(path) as whole, VideoFrameReader(path, draft_size=(800, 600)) as big:
        assert np.array_equal(big.frame_at(0.5), whole.frame_at(0.5))  # never enlarged


def test_pictures_shown_during_videos_are_prepared_before_the_videos_open(
    tmp_path: Path,
) -> None:
    clips = tuple(
        VideoInput(make_video(tmp_path / f"v{n}.mp4", seed=n), 320, 240, 2.0, 24.0, True)
        for n in (1, 2)
    )
    picture = ImageInput(make_image(tmp_path / "still.jpg", 640, 360, seed=3), 640, 360)
    request = engine_request(
        "@Video1, then @Video2, then @Image1.", seed=3, images=(picture,), videos=clips
    )
    board = build_storyboard(request)
    assert [shot.label for shot in board.shots] == ["@Video1", "@Video2", "@Image1"]
    first, second, still = board.shots
    assert second.start < first.end and still.start < second.end  # one run of videos
    plates = Plates(request, board)
    source = open_source(first, request, board, plates)  # the still's plate comes first
    assert plates.held == 1
    source.close()


def _status_mb(field: str) -> float:
    """A memory figure of /proc/self/status (VmRSS: resident now; VmHWM: its peak)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _measure(refs: dict[str, Any], preset: Preset) -> dict[str, Any]:
    """Render the worst request in this (fresh) process and report its memory."""
    root = Path(refs["workspace"]) / f"child-{preset}"
    engine = CompositorEngine()
    warmup = engine_request(
        "@Image1 at dawn.",
        preset=preset,
        resolution="720p",
        aspect_ratio="21:9",
        generate_audio=True,
        seed=1,
        images=(ImageInput(Path(refs["warmup"]), 320, 240),),
    )
    (root / "warmup").mkdir(parents=True, exist_ok=True)
    engine.generate(warmup, LocalContext(root / "warmup"))
    # The idle server: imported, warmed up, nothing rendering. Writing 5 to clear_refs
    # resets the peak to what is resident now (Linux 4.0 and later; else it stays higher).
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    baseline = _status_mb("VmRSS")

    (root / "render").mkdir(exist_ok=True)
    started = time.perf_counter()
    result = engine.generate(worst_request(refs, preset), LocalContext(root / "render"))
    return {
        "baseline_mb": round(baseline, 1),
        "peak_mb": round(_status_mb("VmHWM"), 1),
        "render_seconds": round(time.perf_counter() - started, 2),
        "path": str(result.path),
    }


if __name__ == "__main__":
    report = _measure(json.loads(sys.argv[1]), cast(Preset, sys.argv[2]))
    sys.stdout.write(json.dumps(report) + "\n")
