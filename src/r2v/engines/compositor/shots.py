"""Frame sources: what draws the frames of one shot of the storyboard.

An image shot warps its picture's plate along the shot's camera move, and shows the
picture itself, fitted to the frame, on a pinned first or last frame; a camera that holds
still draws its frame once. A video shot reads its clip forward at the shot's clock (its
frames blended when it plays faster or slower than filmed) and fits each frame by crop or
pad; an ambient shot draws the scene its words name (`painter`) and moves a camera over
it, or, when they name no place, seeded gradients (`ambient`). Sources
open when their shot begins and close when it ends, and `Plates` prepares each picture
when its first shot opens (or just before the video shots it overlaps) and lets it go
after its last, so memory holds at most the pictures of the shots on screen and any
shown again later.

A plate is its picture fitted to the output size enlarged by the tightest zoom its shots
use, so that at that zoom one plate pixel lands on one output pixel. Each frame is then
one `cv2.warpAffine` of the plate with a sub-pixel affine map: motion is smooth however
slow it is, with no whole-pixel stepping. Fast moves are motion-blurred as a 180-degree
shutter would: in the standard preset from a pixel of sweep an exposure, in the fast
preset only at whip speeds (a fiftieth of the frame's width). A pan or a tilt is smeared
exactly, by a box filter along its sweep over a view widened by the sweep's length; any
other sweep (a zoom) averages several sub-frame views.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from r2v.engines.base import EngineRequest, Preset
from r2v.engines.compositor.ambient import AmbientRenderer, make_scene
from r2v.engines.compositor.motion import PLATE_LIMIT, REST, Camera, MotionPath
from r2v.engines.compositor.painter import ScenePainter, pan_axes, shifted_view
from r2v.engines.compositor.storyboard import Shot, Storyboard
from r2v.errors import ReferenceInvalid
from r2v.media.decode import VideoFrameReader, load_image
from r2v.media.fit import FitPlan, apply_fit, fit_frame, plan_fit
from r2v.protocol import FPS

RGBFrame = NDArray[np.uint8]
"""An HxWx3 RGB or HxWx4 RGBA uint8 picture (alpha, when present, is ignored)."""

BLUR_FROM_PX = 1.0
"""Standard preset: the output pixels a frame's exposure must sweep to be blurred."""
FAST_BLUR_FROM = 0.02
"""Fast preset: the share of the frame's width an exposure must sweep (whip speeds)."""
_BLUR_STEP_PX = 1.0
_MAX_BLUR_SAMPLES = 6
_SHUTTER = 0.5  # the exposure, as a share of the frame interval (a 180-degree shutter)
_ALONG = 0.2  # a sweep within this share of an axis's direction is smeared along the axis


class FrameSource(Protocol):
    """Draws the frames of one shot."""

    def frame(self, index: int) -> RGBFrame:
        """The shot's picture at output frame `index` (increasing from call to call)."""
        ...

    def close(self) -> None:
        """Release files and buffers; the source is not used again."""
        ...


@dataclass(frozen=True)
class Plate:
    """A picture prepared for its camera moves, and for a pinned frame its exact framing."""

    picture: RGBFrame
    rest: RGBFrame | None = None


def prepare_plate(
    request: EngineRequest, index: int, board: Storyboard, scale: float, *, rest: bool
) -> Plate:
    """Decode `@Image{index+1}` and fit it once to a plate `scale` times the output size.

    Large JPEGs decode at a reduced scale still at least the plate's size, and the plate is
    made with INTER_AREA, so each frame is only one warp of an image its own size. Plates
    are RGBA: OpenCV's bilinear warp has a vectorised four-channel path (about twice as
    fast as for three channels), and the encoder takes RGBA frames as they are.
    """
    size = plate_size(board.size, scale)
    try:
        image = load_image(request.images[index].path, draft_size=size)
    except ReferenceInvalid as error:
        raise ReferenceInvalid(f"@Image{index + 1}: {error.message}") from error
    flags = interpolation(board.preset)
    plate = fit_frame(image, size, interpolation=flags)
    whole = fit_frame(image, board.size, interpolation=flags) if rest else None
    plate = cv2.cvtColor(plate, cv2.COLOR_RGB2RGBA)  # type: ignore[assignment]
    if whole is not None:
        whole = cv2.cvtColor(whole, cv2.COLOR_RGB2RGBA)  # type: ignore[assignment]
    return Plate(plate, whole)


class Plates:
    """The image plates of a render: each prepared when its picture's first shot opens,
    at the tightest zoom any of its shots uses, and dropped after its last shot.

    Preparing a plate may decode a large picture at full size for a moment; so that this
    never happens while a reference video's decoder is open too, the plates of the image
    shots that begin during a run of overlapping video shots are prepared just before the
    run's first video opens (`prepare_ahead`).
    """

    def __init__(self, request: EngineRequest, board: Storyboard) -> None:
        self._request, self._board = request, board
        self._scale: dict[int, float] = {}
        self._last: dict[int, int] = {}
        self._rest: set[int] = set()
        self._ready: dict[int, Plate] = {}
        self._ahead: dict[Shot, list[int]] = {}
        run: list[int] = []  # the plates to prepare before the current run of videos
        run_end = 0  # where that run ends: no video is open from here until the next run
        for shot in board.shots:
            if shot.kind == "video" and shot.start >= run_end:
                run, run_end = self._ahead.setdefault(shot, []), shot.end
            elif shot.kind == "video":
                run_end = max(run_end, shot.end)
            elif shot.kind == "image" and shot.start < run_end:
                run.append(shot.index)
        for number, shot in enumerate(board.shots):
            if shot.kind != "image" or shot.motion is None:
                continue
            zoom = min(max(shot.motion.max_zoom, 1.0), PLATE_LIMIT)
            self._scale[shot.index] = max(self._scale.get(shot.index, 1.0), zoom)
            self._last[shot.index] = number
            if shot.pins:
                self._rest.add(shot.index)

    def take(self, index: int) -> Plate:
        """The plate of `@Image{index+1}`, prepared on first use."""
        if index not in self._ready:
            self._ready[index] = prepare_plate(
                self._request, index, self._board, self._scale.get(index, 1.0),
                rest=index in self._rest,
            )  # fmt: skip
        return self._ready[index]

    def prepare_ahead(self, shot: Shot) -> None:
        """Prepare the plates that must not be prepared once `shot`, a video, is open."""
        for index in self._ahead.get(shot, ()):
            self.take(index)

    def release(self, number: int) -> None:
        """Drop the plates no shot after shot `number` uses."""
        for index in [i for i in self._ready if self._last.get(i, -1) <= number]:
            del self._ready[index]

    @property
    def held(self) -> int:
        """How many plates are in memory."""
        return len(self._ready)


class ImageSource:
    """An image shot: the plate seen through the shot's camera move."""

    def __init__(self, shot: Shot, plate: Plate, board: Storyboard) -> None:
        if shot.motion is None:
            raise ValueError("an image shot needs a camera move")
        self._shot, self._plate, self._motion = shot, plate, shot.motion
        self._size = board.size
        self._flags = interpolation(board.preset)
        self._blur_from = blur_threshold(board.preset, board.size)
        self._span = max(1, shot.length - 1)
        self._last: tuple[tuple[Camera, ...], RGBFrame] | None = None

    def frame(self, index: int) -> RGBFrame:
        progress = (index - self._shot.start) / self._span
        camera = self._motion.at(progress)
        if self._plate.rest is not None and camera == REST:
            return self._plate.rest  # a pinned frame: the picture itself, exactly
        picture = self._plate.picture
        plate = (picture.shape[1], picture.shape[0])
        cameras = exposure(
            self._motion, progress, 1 / self._span, plate, self._size, self._blur_from
        )
        if self._last is not None and self._last[0] == cameras:
            return self._last[1]  # the camera holds still: the same frame, exactly
        drawn = render_exposure(picture, cameras, self._size, flags=self._flags)
        self._last = (cameras, drawn)
        return drawn

    def close(self) -> None:
        pass  # the plate belongs to `Plates`


class VideoSource:
    """A video shot: the clip at the shot's clock, fitted by crop or pad."""

    def __init__(self, shot: Shot, request: EngineRequest, board: Storyboard) -> None:
        self._shot, self._size = shot, board.size
        self._flags = interpolation(board.preset)
        self._plan: FitPlan | None = None
        try:
            self._reader = VideoFrameReader(request.videos[shot.index].path, draft_size=self._size)
        except ReferenceInvalid as error:
            raise ReferenceInvalid(f"{shot.label}: {error.message}") from error

    def frame(self, index: int) -> RGBFrame:
        seconds = self._shot.clip_time(index)
        try:
            if self._shot.clip_speed == 1.0:
                picture = self._reader.frame_at(seconds)
            else:  # retimed: every frame a blend of the two around its moment
                picture = self._reader.blended_at(seconds)
        except ReferenceInvalid as error:
            raise ReferenceInvalid(f"{self._shot.label}: {error.message}") from error
        if self._plan is None:
            # Planned from the decoded frame, which has display rotation applied already.
            self._plan = plan_fit((picture.shape[1], picture.shape[0]), self._size)
        return apply_fit(picture, self._plan, interpolation=self._flags)

    def close(self) -> None:
        self._reader.close()


class SceneSource:
    """A shot drawn from the words (`painter`), seen through its camera move: pixel for
    pixel and shifted when the move keeps its zoom (a pan, a still camera), else warped."""

    def __init__(self, shot: Shot, board: Storyboard) -> None:
        if shot.scene is None or shot.motion is None:
            raise ValueError("a drawn shot needs a scene and a camera move")
        self._shot, self._motion, self._size = shot, shot.motion, board.size
        self._flags, self._span = interpolation(board.preset), max(1, shot.length - 1)
        self._along = pan_axes(shot.motion)
        zoom = shot.motion.start.zoom if self._along else shot.motion.max_zoom
        size = plate_size(board.size, min(max(zoom, 1.0), PLATE_LIMIT))
        self._painter = ScenePainter(shot.scene, size, shot.length / FPS)

    def frame(self, index: int) -> RGBFrame:
        plate = self._painter.plate_at((index - self._shot.start) / FPS)
        camera = self._motion.at((index - self._shot.start) / self._span)
        if self._along is not None:
            return shifted_view(plate, camera, self._size, self._along)
        return render_view(plate, camera, self._size, flags=self._flags)

    def close(self) -> None:
        pass


class AmbientSource:
    """An abstract shot for words that name no place to draw."""

    def __init__(self, shot: Shot, board: Storyboard) -> None:
        scene = make_scene(board.prompt, board.seed, shot.index)
        self._shot = shot
        self._renderer = AmbientRenderer(scene, board.size, flags=interpolation(board.preset))

    def frame(self, index: int) -> RGBFrame:
        return self._renderer.frame((index - self._shot.start) / FPS)

    def close(self) -> None:
        pass


def open_source(
    shot: Shot, request: EngineRequest, board: Storyboard, plates: Plates
) -> FrameSource:
    """The frame source of `shot`; image plates come from `plates`."""
    if shot.kind == "image":
        return ImageSource(shot, plates.take(shot.index), board)
    if shot.kind == "video":
        plates.prepare_ahead(shot)
        return VideoSource(shot, request, board)
    if shot.scene is not None:
        return SceneSource(shot, board)
    return AmbientSource(shot, board)


# --- drawing a plate through a camera ---------------------------------------------------


def plate_size(output: tuple[int, int], scale: float) -> tuple[int, int]:
    """The size a picture is prepared at for moves as tight as `scale`."""
    return (math.ceil(output[0] * scale), math.ceil(output[1] * scale))


def interpolation(preset: Preset) -> int:  # noqa: ARG001 - the same for both presets
    """The warp/resize filter of a preset: bilinear for both.

    Bicubic warps a 720p frame in about 15 ms against bilinear's 1 ms, as long as the whole
    of a fast render's frame, and after encoding gave 0.7 dB on a slow push-in: standard's
    time buys more quality in the encoder (bench/presets.py).
    """
    return cv2.INTER_LINEAR


def blur_threshold(preset: Preset, output: tuple[int, int]) -> float:
    """The output pixels a frame's exposure must sweep for the preset to blur it."""
    return BLUR_FROM_PX if preset == "standard" else FAST_BLUR_FROM * output[0]


def view_matrix(
    camera: Camera, plate: tuple[int, int], output: tuple[int, int]
) -> NDArray[np.float64]:
    """The 2x3 map from output pixel to plate pixel (for `WARP_INVERSE_MAP`).

    Pixel centres are mapped onto pixel centres, so a zoom of exactly 1 over a plate of the
    output's size is the identity.
    """
    pw, ph = plate
    ow, oh = output
    sx = pw / camera.zoom / ow
    sy = ph / camera.zoom / oh
    left = pw * (0.5 + camera.x) - sx * ow / 2
    top = ph * (0.5 + camera.y) - sy * oh / 2
    return np.array(
        [[sx, 0.0, left + 0.5 * sx - 0.5], [0.0, sy, top + 0.5 * sy - 0.5]], dtype=np.float64
    )


def render_view(
    plate: NDArray[np.uint8],
    camera: Camera,
    output: tuple[int, int],
    *,
    flags: int,
    widen: tuple[int, int] = (0, 0),
) -> NDArray[np.uint8]:
    """One output frame: the plate seen through `camera`, resampled with `flags`; `widen`
    adds that many pixels of the same view on each side (left and right, top and bottom)."""
    matrix = view_matrix(camera, (plate.shape[1], plate.shape[0]), output)
    matrix[:, 2] -= matrix[:, 0] * widen[0] + matrix[:, 1] * widen[1]
    frame = cv2.warpAffine(
        plate,
        matrix,
        (output[0] + 2 * widen[0], output[1] + 2 * widen[1]),
        flags=flags | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT_101,
    )
    return frame  # type: ignore[return-value]


def exposure(
    path: MotionPath,
    progress: float,
    step: float,
    plate: tuple[int, int],
    output: tuple[int, int],
    blur_from: float = BLUR_FROM_PX,
) -> tuple[Camera, ...]:
    """The framings one frame is exposed through: the camera at `progress` when it sweeps
    less than `blur_from` output pixels during the exposure; else several across it."""
    half = step * _SHUTTER / 2
    early, late = path.at(progress - half), path.at(progress + half)
    if early == late:
        return (early,)
    sweep = float(np.max(np.hypot(*_sweeps(early, late, plate, output).T)))
    if sweep < blur_from:
        return (path.at(progress),)
    count = min(_MAX_BLUR_SAMPLES, max(2, math.ceil(sweep / _BLUR_STEP_PX)))
    return tuple(path.at(progress - half + 2 * half * (i + 0.5) / count) for i in range(count))


def render_exposure(
    plate: NDArray[np.uint8],
    cameras: tuple[Camera, ...],
    output: tuple[int, int],
    *,
    flags: int,
) -> NDArray[np.uint8]:
    """The plate seen through `cameras` across one exposure: motion blur when several.

    Blurred frames sample bilinearly whatever `flags` asks: the blur is softer along the
    motion than any filter's difference, at a fraction of bicubic's cost.
    """
    if len(cameras) == 1:
        return render_view(plate, cameras[0], output, flags=flags)
    size = (plate.shape[1], plate.shape[0])
    sweeps = _sweeps(cameras[0], cameras[-1], size, output) * len(cameras) / (len(cameras) - 1)
    dx, dy = np.abs(sweeps.mean(axis=0))
    if float(np.ptp(sweeps, axis=0).max()) < 1.0 and min(dx, dy) <= _ALONG * max(dx, dy):
        # A pan or a tilt: the exposure is the middle view smeared along it.
        middle = cameras[len(cameras) // 2] if len(cameras) % 2 else _midway(cameras)
        length = max(1, round(max(dx, dy)))
        widen = (length // 2 + 1, 0) if dx >= dy else (0, length // 2 + 1)
        wide = render_view(plate, middle, output, flags=cv2.INTER_LINEAR, widen=widen)
        smeared = cv2.blur(wide, (length, 1) if dx >= dy else (1, length))
        w, h = widen
        return np.ascontiguousarray(smeared[h : h + output[1], w : w + output[0]])
    total = np.zeros((output[1], output[0], plate.shape[2]), dtype=np.float32)
    for camera in cameras:
        cv2.accumulate(render_view(plate, camera, output, flags=cv2.INTER_LINEAR), total)
    return cv2.convertScaleAbs(total, alpha=1.0 / len(cameras))  # type: ignore[return-value]


def _sweeps(
    early: Camera, late: Camera, plate: tuple[int, int], output: tuple[int, int]
) -> NDArray[np.float64]:
    """How far each corner of the frame moves from `early` to `late`, in output pixels."""
    corners = np.array([[0, 0, 1], [output[0], 0, 1], [0, output[1], 1], [*output, 1]], float)
    a = corners @ view_matrix(early, plate, output).T
    b = corners @ view_matrix(late, plate, output).T
    scale = plate[0] / output[0] / max(early.zoom, late.zoom)  # plate pixels per output pixel
    return (b - a) / scale


def _midway(cameras: tuple[Camera, ...]) -> Camera:
    a, b = cameras[len(cameras) // 2 - 1], cameras[len(cameras) // 2]
    return Camera((a.zoom + b.zoom) / 2, (a.x + b.x) / 2, (a.y + b.y) / 2)
