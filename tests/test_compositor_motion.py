"""Compositor motion, checked on decoded output: pinned frames, transferred and prompted moves.

Motion is measured independently of the engine: phase correlation between decoded frames
gives how the content shifted (positive x: it moved right, so the camera panned left), and
OpenCV's ECC alignment gives how it scaled.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from r2v.engines.base import EngineRequest, ImageInput, LocalContext, VideoInput
from r2v.engines.compositor import CompositorEngine
from r2v.engines.compositor.shots import Plates, open_source
from r2v.engines.compositor.storyboard import build_storyboard
from r2v.errors import RequestCancelled
from r2v.media.fit import fit_frame
from r2v.protocol import OUTPUT_SIZES
from tests import mediafiles
from tests.mediafiles import (
    decoded_frames,
    difference,
    engine_request,
    make_camera_video,
    make_image,
    pattern,
)

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


def request(refs: dict[str, Any], prompt: str, **changes: Any) -> EngineRequest:
    images = tuple(refs[name] for name in changes.pop("images", ("a",)))
    videos = tuple(refs[name] for name in changes.pop("videos", ()))
    return engine_request(prompt, **({"seed": 3, "images": images, "videos": videos} | changes))


def render(refs: dict[str, Any], prompt: str, folder: Path, **changes: Any) -> list[Frame]:
    folder.mkdir(parents=True, exist_ok=True)
    result = CompositorEngine().generate(request(refs, prompt, **changes), LocalContext(folder))
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
    return mediafiles.fitted(image.path, size)


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

    req = request(refs, "@Image1, camera of @Video1", videos=("right",))
    context = CancelledAfterStart(tmp_path)
    with pytest.raises(RequestCancelled):
        CompositorEngine().generate(req, context)
    assert context.reported == [0.0, 0.0]  # stopped inside the analysis, before any frame
    assert not list(tmp_path.iterdir())


# --- strength and magnitude: measured over whole shots ------------------------------------

WIDTH = OUTPUT_SIZES["480p"]["16:9"][0]


def make_moving_video(
    path: Path, moves: list[tuple[int, float, float]], size: tuple[int, int] = (320, 180)
) -> Path:
    """An H.264 video of a camera over a large `pattern` picture, in stages: each of `moves`
    is (frames, pan in output pixels a frame to the right, zoom factor a frame)."""
    width, height = size
    total = sum(frames for frames, _, _ in moves)
    reach = sum(frames * abs(pan) for frames, pan, _ in moves)
    world = pattern(round((reach + width) * 1.3) + 64, round(height * 1.3) + 64, seed=9)
    cx, cy, scale = world.shape[1] / 2 - reach / 2, world.shape[0] / 2, 1.0
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "18"}
        index = 0
        for frames, pan, zoom in moves:
            for _ in range(frames):
                x0, y0 = cx - width * scale / 2, cy - height * scale / 2
                matrix = np.array([[scale, 0.0, x0], [0.0, scale, y0]], dtype=np.float64)
                view = cv2.warpAffine(
                    world, matrix, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
                )
                frame = av.VideoFrame.from_ndarray(view, format="rgb24")
                frame.pts, frame.time_base = index, Fraction(1, 24)
                out.mux(stream.encode(frame))
                cx, scale, index = cx + pan * scale, scale / zoom, index + 1
        out.mux(stream.encode())
    assert index == total
    return path


def motion(a: Frame, b: Frame, zoom: float = 1.0) -> tuple[float, float, float]:
    """How the content moved from `a` to `b`: the shift of the frame's centre (pixels, right
    and down positive) and the scale, by ECC alignment started from the identity (or
    `zoom`) and from the phase correlation's shift, whichever aligns better."""
    dx, dy = shift(a, b)
    small_a = cv2.resize(grey(a), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    small_b = cv2.resize(grey(b), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    centre = np.array([small_a.shape[1] / 2, small_a.shape[0] / 2])
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5)
    found: list[tuple[float, NDArray[np.float64]]] = []
    starts = [(1 - zoom) * centre]
    if np.hypot(dx, dy) > 4:  # far for ECC to find from the identity
        starts.append(np.array([dx / 2, dy / 2]))
    for start in starts:
        warp = np.hstack([np.eye(2) * zoom, start[:, None]]).astype(np.float32)
        try:
            score, warp = cv2.findTransformECC(
                small_a, small_b, warp, cv2.MOTION_AFFINE, criteria, None, 5
            )
        except cv2.error:  # did not converge from this start
            continue
        found.append((score, warp.astype(np.float64)))
    matrix = max(found, key=lambda option: option[0])[1]
    moved = matrix[:, :2] @ centre + matrix[:, 2] - centre
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    return 2 * float(moved[0]), 2 * float(moved[1]), scale


def steps(frames: list[Frame], every: int = 2) -> NDArray[np.float64]:
    """(dx, dy, scale) from each frame to the one `every` frames later, through the shot."""
    return np.array(
        [motion(frames[i], frames[i + every]) for i in range(0, len(frames) - every, every)]
    )


def pan_and_push(frames: list[Frame], every: int = 2) -> tuple[float, float, float]:
    """From a shot that pans right, then pushes in: the pan (pixels the camera moved right
    from the pan's start on), the zoom while panning, and the push-in after the pan.

    What comes before the pan (a pinned frame's lead-in) is left out.
    """
    measured = steps(frames, every)
    pans = np.flatnonzero(-measured[:, 0] > 0.5 * np.max(-measured[:, 0]))
    first, last = pans[0], pans[-1]
    chained = float(np.prod(measured[last + 1 :, 2]))
    return (
        -float(measured[first:, 0].sum()),
        float(np.prod(measured[first : last + 1, 2])),
        motion(frames[(last + 1) * every], frames[-1], chained)[2],
    )


@pytest.fixture(scope="module")
def pan_then_push(tmp_path_factory: pytest.TempPathFactory) -> VideoInput:
    """A camera that pans right 60% of its frame in a second, then pushes in 1.67x."""
    root = tmp_path_factory.mktemp("staged")
    moves = [(24, 8.0, 1.0), (25, 0.0, 1.67 ** (1 / 24))]  # 24 steps of each between frames
    path = make_moving_video(root / "pan-push.mp4", moves)
    return VideoInput(path, 320, 180, 49 / 24, 24.0, False)


REFERENCE_PAN, REFERENCE_PUSH = 0.6 * WIDTH, 1.67


@pytest.mark.parametrize("pinned", [False, True], ids=["free", "first-frame"])
def test_camera_of_a_video_keeps_its_order_and_magnitude(
    refs: dict[str, Any], pan_then_push: VideoInput, tmp_path: Path, pinned: bool
) -> None:
    prompt = "follow the camera of @Video1."
    prompt = f"@Image1 as the first frame, {prompt}" if pinned else f"@Image1, {prompt}"
    frames = render({**refs, "staged": pan_then_push}, prompt, tmp_path, videos=("staged",))
    if pinned:
        assert difference(frames[0], fitted(refs["a"], OUTPUT_SIZES["480p"]["16:9"])) < 4
    pan, zoom_while_panning, push = pan_and_push(frames)
    seen = f"panned {pan:.0f} px for {REFERENCE_PAN:.0f} (zooming {zoom_while_panning:.3f}x),"
    seen += f" then pushed in {push:.3f}x for {REFERENCE_PUSH}x"
    assert abs(pan / REFERENCE_PAN - 1) < 0.15, seen
    assert abs(zoom_while_panning - 1) < 0.05, f"it pans where the reference pans: {seen}"
    assert abs(push / REFERENCE_PUSH - 1) < 0.15, seen


def zoom_of(frames: list[Frame]) -> float:
    return float(np.prod(steps(frames[2:-2], every=6)[:, 2]))


def pan_of(frames: list[Frame]) -> float:
    """The camera's travel to the right, in frame widths."""
    return -sum(shift(a, b)[0] for a, b in zip(frames, frames[1:], strict=False)) / WIDTH


def test_the_strength_of_a_move_follows_its_words(refs: dict[str, Any], tmp_path: Path) -> None:
    zooms = [
        zoom_of(render(refs, f"@Image1, the camera {words}", tmp_path / words))
        for words in ("slowly zooms in", "zooms in", "quickly zooming in")
    ]
    pans = [
        pan_of(render(refs, f"@Image1, the camera {words}", tmp_path / words))
        for words in ("slowly pans right", "pans right", "quickly pans right")
    ]
    # Slowly, by default, quickly: a push-in's zoom and a pan's travel in frame widths.
    assert 1.06 < zooms[0] < 1.15 < zooms[1] < 1.35 < 1.5 < zooms[2], zooms
    assert 0.05 < pans[0] < 0.12 < pans[1] < 0.3 < 0.4 < pans[2], pans


def test_a_whip_pan_crosses_the_frame_with_motion_blur(
    refs: dict[str, Any], tmp_path: Path
) -> None:
    frames = render(refs, "@Image1, whip pan to the right", tmp_path)
    moved = -np.array([shift(a, b)[0] for a, b in zip(frames, frames[1:], strict=False)])
    fastest = int(np.argmax(moved))

    def detail(frame: Frame) -> float:  # horizontal detail: what a horizontal blur removes
        return float(np.abs(np.diff(grey(frame), axis=1)).mean())

    blur = detail(frames[fastest]) / detail(frames[0])
    seen = f"{moved.sum() / WIDTH:.2f} of the frame, at most {moved.max():.0f} px a frame"
    assert moved.sum() > 0.6 * WIDTH, f"a whip pan crosses the frame: {seen}"
    assert moved.max() > 0.04 * WIDTH, f"in a burst, not a glide: {seen}"
    assert blur < 0.6, f"smeared along the motion: {blur:.2f} of a still frame's detail"


@pytest.mark.parametrize(
    "prompt",
    [
        "@Image1, static camera",
        "@Image1, locked-off shot",
        "@Image1，固定镜头",
        "@Image1 as the first frame, static shot, quickly",
    ],
)
def test_static_is_exactly_still(refs: dict[str, Any], tmp_path: Path, prompt: str) -> None:
    req = request(refs, prompt)
    board = build_storyboard(req)
    (shot,) = board.shots
    source = open_source(shot, req, board, Plates(req, board))
    drawn = [source.frame(n).copy() for n in range(shot.start, shot.end)]
    assert all(np.array_equal(drawn[0], frame) for frame in drawn), "identical frames"
    frames = render(refs, prompt, tmp_path)
    dx, dy, zoom = motion(frames[2], frames[-1])
    assert (round(dx, 1), round(dy, 1), round(zoom, 3)) == (0.0, 0.0, 1.0), (dx, dy, zoom)
    assert max(difference(frames[2], frame) for frame in frames[3:]) < 2, "H.264 adds no motion"


@pytest.mark.parametrize("pin", ["first", "last"])
def test_a_pinned_portrait_picture_fills_the_landscape_frame(tmp_path: Path, pin: str) -> None:
    # Fine texture everywhere, which the blurred backdrop of a pillarbox does not have.
    texture = np.random.default_rng(5).integers(0, 60, size=(960, 540, 1), dtype=np.uint8)
    picture = cv2.add(pattern(540, 960, seed=14), np.repeat(texture, 3, axis=2))
    cv2.imwrite(str(tmp_path / "tall.png"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    portrait = ImageInput(tmp_path / "tall.png", 540, 960)
    frames = render({"tall": portrait}, f"@Image1 as the {pin} frame", tmp_path, images=("tall",))
    if pin == "last":
        frames = frames[::-1]
    size = OUTPUT_SIZES["480p"]["16:9"]
    side = size[0] // 10

    def sides(frame: Frame) -> float:  # detail at the frame's sides relative to its middle
        g = grey(frame)
        edges = np.abs(np.diff(g, axis=1))[:-1] + np.abs(np.diff(g, axis=0))[:, :-1]
        middle = edges[:, size[0] // 2 - side : size[0] // 2 + side].mean()
        return float(min(edges[:, :side].mean(), edges[:, -side:].mean()) / middle)

    assert difference(frames[0], fit_frame(picture, size)) < 4, "the pinned frame, pillarboxed"
    assert sides(frames[0]) < 0.2, "the pillarbox's backdrop is blurred"
    filled = next((n for n, frame in enumerate(frames) if sides(frame) > 0.5), len(frames))
    assert filled <= 30, f"the picture fills the frame from frame {filled}"
    assert all(sides(frame) > 0.5 for frame in frames[30:-30]), "and keeps filling it"
