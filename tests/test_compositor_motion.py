"""Compositor motion, checked on decoded output: pinned frames, transferred and prompted moves.

Motion is measured independently of the engine: phase correlation between decoded frames
gives how the content shifted (positive x: it moved right, so the camera panned left), and
OpenCV's ECC alignment gives how it scaled.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from r2v.engines.base import EngineRequest, ImageInput, LocalContext, VideoInput
from r2v.engines.compositor import CompositorEngine
from r2v.errors import RequestCancelled
from r2v.protocol import OUTPUT_SIZES
from tests.mediafiles import decoded_frames, make_camera_video, make_image

Frame = NDArray[np.uint8]


@pytest.fixture(scope="module")
def refs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("motion")

    def video(name: str, **camera: Any) -> VideoInput:
        path = make_camera_video(root / f"{name}.mp4", 320, 180, 2.0, seed=9, **camera)
        return VideoInput(path, 320, 180, 2.0, 24.0, False)

    return {
        "a": ImageInput(make_image(root / "a.jpg", 960, 540, seed=11), 960, 540),
        "b": ImageInput(make_image(root / "b.jpg", 960, 540, seed=12), 960, 540),
        "c": ImageInput(make_image(root / "c.jpg", 960, 540, seed=13), 960, 540),
        "right": video("right", pan=(3.0, 0.0)),
        "left": video("left", pan=(-3.0, 0.0)),
        "down": video("down", pan=(0.0, 2.0)),
        "closer": video("closer", zoom=1.008),
    }


def render(refs: dict[str, Any], prompt: str, folder: Path, **changes: Any) -> list[Frame]:
    images = tuple(refs[name] for name in changes.pop("images", ("a",)))
    videos = tuple(refs[name] for name in changes.pop("videos", ()))
    request = EngineRequest(
        model="seedance-2.0-fast-reference-to-video",
        preset="fast",
        prompt=prompt,
        resolution="480p",
        aspect_ratio="16:9",
        duration=4,
        generate_audio=False,
        seed=3,
        images=images,
        videos=videos,
    )
    folder.mkdir(parents=True, exist_ok=True)
    result = CompositorEngine().generate(
        dataclasses.replace(request, **changes), LocalContext(folder)
    )
    return decoded_frames(result.path)


def grey(frame: Frame) -> NDArray[np.float32]:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)  # type: ignore[return-value]


def shift(a: Frame, b: Frame) -> tuple[float, float]:
    """How far the content moved from `a` to `b`, in pixels (right and down positive)."""
    window = cv2.createHanningWindow((a.shape[1], a.shape[0]), cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(grey(a), grey(b), window)
    return float(dx), float(dy)


def scale(a: Frame, b: Frame) -> float:
    """How much the content grew from `a` to `b` (ECC alignment, similarity model)."""
    small_a = cv2.resize(grey(a), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    small_b = cv2.resize(grey(b), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    warp = np.eye(2, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 200, 1e-6)
    _, warp = cv2.findTransformECC(small_a, small_b, warp, cv2.MOTION_AFFINE, criteria, None, 5)
    return float(np.sqrt(abs(np.linalg.det(warp[:, :2].astype(np.float64)))))


def fitted(image: ImageInput, size: tuple[int, int]) -> Frame:
    """The reference cropped to the output's shape and resized: what a pinned frame shows."""
    picture = cv2.cvtColor(cv2.imread(str(image.path)), cv2.COLOR_BGR2RGB)
    height, width = picture.shape[:2]
    keep_w = min(width, round(height * size[0] / size[1]))
    keep_h = min(height, round(width * size[1] / size[0]))
    left, top = (width - keep_w) // 2, (height - keep_h) // 2
    crop = picture[top : top + keep_h, left : left + keep_w]
    return cv2.resize(crop, size, interpolation=cv2.INTER_AREA)  # type: ignore[return-value]


def difference(a: Frame, b: Frame) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_first_and_last_frames_are_the_pinned_pictures(
    refs: dict[str, Any], tmp_path: Path
) -> None:
    frames = render(
        refs,
        "@Image2 walks in. @Image1 as the first frame, @Image3 as the last frame.",
        tmp_path,
        images=("a", "b", "c"),
    )
    size = OUTPUT_SIZES["480p"]["16:9"]
    first, last = fitted(refs["a"], size), fitted(refs["c"], size)
    assert difference(frames[0], first) < 4, "the opening frame is @Image1 itself"
    assert difference(frames[-1], last) < 4, "the closing frame is @Image3 itself"
    assert difference(frames[0], last) > 20 and difference(frames[-1], first) > 20
    assert difference(frames[12], frames[0]) > 1, "the camera moves off the pinned frame"


@pytest.mark.parametrize(
    ("video", "direction"), [("right", (-1, 0)), ("left", (1, 0)), ("down", (0, -1))]
)
def test_camera_of_a_video_moves_the_image_the_same_way(
    refs: dict[str, Any], tmp_path: Path, video: str, direction: tuple[int, int]
) -> None:
    frames = render(refs, "@Image1 at dusk, camera of @Video1", tmp_path, videos=(video,))
    moves = [shift(frames[i], frames[i + 6]) for i in range(6, 84, 6)]
    for axis, sign in enumerate(direction):
        along = [move[axis] for move in moves]
        if sign:
            assert all(v * sign > 0.5 for v in along), f"content should move {direction}: {along}"
        else:
            assert all(abs(v) < 0.5 for v in along), along


def test_camera_of_a_video_pushing_in_pushes_in(refs: dict[str, Any], tmp_path: Path) -> None:
    frames = render(refs, "参考@Video1的运镜，@Image1", tmp_path, videos=("closer",))
    assert scale(frames[5], frames[90]) > 1.15


def test_transferred_move_starts_on_a_pinned_first_frame(
    refs: dict[str, Any], tmp_path: Path
) -> None:
    frames = render(
        refs,
        "@Image1 as the first frame, follow the motion of @Video1",
        tmp_path,
        videos=("right",),
    )
    assert difference(frames[0], fitted(refs["a"], OUTPUT_SIZES["480p"]["16:9"])) < 4
    assert shift(frames[30], frames[60])[0] < -1  # then pans right, as the video does


@pytest.mark.parametrize(
    ("prompt", "axis", "sign"),
    [
        ("the camera pans left across @Image1", 0, 1),
        ("@Image1, 镜头向右摇", 0, -1),
        ("@Image1, tilt down", 1, -1),
    ],
)
def test_prompted_pans(
    refs: dict[str, Any], tmp_path: Path, prompt: str, axis: int, sign: int
) -> None:
    frames = render(refs, prompt, tmp_path)
    assert shift(frames[10], frames[80])[axis] * sign > 3


def test_prompted_push_in_and_pull_out(refs: dict[str, Any], tmp_path: Path) -> None:
    assert scale(*render(refs, "slowly push in on @Image1", tmp_path / "in")[5:90:84]) > 1.02
    assert scale(*render(refs, "@Image1, zoom out", tmp_path / "out")[5:90:84]) < 0.95


def test_slow_moves_glide_with_subpixel_steps(refs: dict[str, Any], tmp_path: Path) -> None:
    frames = render(refs, "@Image1, the camera slowly pans right", tmp_path)
    steps = np.array([shift(frames[i], frames[i + 1])[0] for i in range(20, 76)])
    assert np.all(steps < 0) and 0.1 < -steps.mean() < 1.0  # under a pixel a frame
    # Whole-pixel stepping would alternate between 0 and 1 px; a glide changes smoothly.
    assert np.abs(np.diff(steps)).max() < 0.15


def test_standard_blurs_fast_moves_along_the_motion(refs: dict[str, Any], tmp_path: Path) -> None:
    prompt = "0-1s: @Image1, the camera pans right quickly. 1-4s: @Image2."
    images = ("a", "b")
    fast = render(refs, prompt, tmp_path / "fast", images=images)
    standard = render(refs, prompt, tmp_path / "standard", images=images, preset="standard")

    def streaks(frame: Frame) -> float:  # horizontal detail relative to vertical detail
        g = grey(frame)
        return float(np.abs(np.diff(g, axis=1)).mean() / np.abs(np.diff(g, axis=0)).mean())

    # A second to cross the picture: about ten pixels a frame, which a 180-degree shutter
    # smears over five.
    assert shift(fast[11], fast[12])[0] < -6
    assert streaks(standard[12]) < 0.7 * streaks(fast[12])
    assert streaks(standard[60]) > 0.8 * streaks(fast[60])  # a slow shot stays sharp


def test_cancellation_reaches_the_motion_analysis(refs: dict[str, Any], tmp_path: Path) -> None:
    class CancelledAfterStart(LocalContext):
        def progress(self, fraction: float) -> None:
            super().progress(fraction)
            if len(self.reported) > 1:  # the first report opens the render; then: stop
                raise RequestCancelled("cancelled by the client")

    request = EngineRequest(
        model="seedance-2.0-fast-reference-to-video",
        preset="fast",
        prompt="@Image1, camera of @Video1",
        resolution="480p",
        aspect_ratio="16:9",
        duration=4,
        generate_audio=False,
        seed=3,
        images=(refs["a"],),
        videos=(refs["right"],),
    )
    context = CancelledAfterStart(tmp_path)
    with pytest.raises(RequestCancelled):
        CompositorEngine().generate(request, context)
    assert context.reported == [0.0, 0.0]  # stopped inside the analysis, before any frame
    assert not list(tmp_path.iterdir())
