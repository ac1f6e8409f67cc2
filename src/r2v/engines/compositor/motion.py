"""Camera moves over a still picture: push-in, pull-out, pans, drift, static, transferred.

A picture is prepared once as a *plate*: fitted to the output size enlarged by the
tightest zoom its shots use, so that at that zoom one plate pixel lands on one output
pixel. Each frame is then one `cv2.warpAffine` of the plate with a sub-pixel affine map:
motion is smooth however slow it is, with no whole-pixel stepping, and costs about one
resize per frame. Fast moves can be rendered with motion blur: several warps across the
frame's exposure, averaged.

A move is a `MotionPath`: keyframed framings (`Camera`) evenly spaced over the shot and an
easing. Seeded and prompted moves have two or three keys; a move transferred from a
reference video (see `transfer`) has dozens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from r2v.engines.base import Preset

MotionKind = Literal[
    "push_in", "pull_out", "pan_left", "pan_right", "pan_up", "pan_down", "drift", "static",
    "transfer",
]  # fmt: skip
SEEDED_KINDS: tuple[MotionKind, ...] = (
    "push_in", "pull_out", "pan_left", "pan_right", "pan_up", "pan_down", "drift",
)  # fmt: skip

MAX_ZOOM = 1.18
"""The tightest framing of a move at the default pace (1/MAX_ZOOM of the picture shows)."""
PLATE_LIMIT = 1.6
"""The largest plate scale; a tighter framing (fast or transferred moves) enlarges it."""

_TRAVEL = 0.9  # share of the available margin a move crosses, keeping clear of the edges
_BLUR_THRESHOLD_PX = 1.0  # output pixels a frame's exposure must sweep to be blurred
_BLUR_STEP_PX = 1.0
_MAX_BLUR_SAMPLES = 6
_SHUTTER = 0.5  # the exposure, as a share of the frame interval (a 180-degree shutter)


@dataclass(frozen=True)
class Camera:
    """A framing of the plate: `zoom` >= 1 (1 shows all of it) and the view's centre.

    `x` and `y` are the centre's offset from the plate's centre as a fraction of the plate's
    width and height (right and down are positive); they stay within the margin the zoom
    leaves, so the view never leaves the picture.
    """

    zoom: float
    x: float = 0.0
    y: float = 0.0

    def clamped(self, max_zoom: float = PLATE_LIMIT) -> Camera:
        """This framing, pulled back inside `max_zoom` and the picture's edges."""
        zoom = min(max(self.zoom, 1.0), max_zoom)
        margin = margin_at(zoom)
        return Camera(zoom, min(max(self.x, -margin), margin), min(max(self.y, -margin), margin))


REST = Camera(1.0)
"""The whole picture, centred: where a pinned first or last frame starts or ends."""


def margin_at(zoom: float) -> float:
    """How far (a fraction of the plate) the view's centre may stray at `zoom`."""
    return (1.0 - 1.0 / zoom) / 2


@dataclass(frozen=True)
class MotionPath:
    """A camera move over a shot: framings evenly spaced in (eased) time.

    `ease_in` / `ease_out` bring the move to rest at that end (pinned frames); otherwise it
    keeps some speed at the cut, so shots never look frozen at their ends.
    """

    kind: MotionKind
    keys: tuple[Camera, ...]
    ease_in: bool = False
    ease_out: bool = False

    @property
    def start(self) -> Camera:
        """The framing of the shot's first frame."""
        return self.keys[0]

    @property
    def end(self) -> Camera:
        """The framing of the shot's last frame."""
        return self.keys[-1]

    @property
    def max_zoom(self) -> float:
        """The tightest framing of the move: the plate must be at least this much enlarged."""
        return max(key.zoom for key in self.keys)

    def at(self, progress: float) -> Camera:
        """The framing at `progress` (0 at the shot's first frame, 1 at its last)."""
        p = min(max(progress, 0.0), 1.0)
        smooth = p * p * (3 - 2 * p)
        if self.kind == "transfer" and not (self.ease_in or self.ease_out):
            eased = p  # the reference video's own pace
        elif self.ease_in and self.ease_out:
            eased = smooth
        elif self.ease_in:
            eased = 1 - math.cos(p * math.pi / 2) if p < 1 else 1.0
        elif self.ease_out:
            eased = math.sin(p * math.pi / 2)
        else:
            eased = 0.5 * p + 0.5 * smooth
        position = eased * (len(self.keys) - 1)
        low = min(int(position), len(self.keys) - 2)
        t = position - low
        a, b = self.keys[low], self.keys[low + 1]
        if t == 0.0:
            return a
        if t == 1.0:
            return b
        # Linear in zoom and centre: between two valid framings every framing is valid too,
        # since the margin grows with the zoom more slowly than linearly.
        return Camera(
            a.zoom + (b.zoom - a.zoom) * t, a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t
        ).clamped(self.max_zoom)


def seeded_path(
    rng: np.random.Generator,
    kind: MotionKind | None = None,
    *,
    speed: float = 1.0,
    from_rest: bool = False,
    to_rest: bool = False,
    avoid: MotionKind | None = None,
) -> MotionPath:
    """A move of `kind` (seeded when None) at `speed`; `from_rest` / `to_rest` make it
    start or end on the whole picture, exactly."""
    choices = [k for k in SEEDED_KINDS if k != avoid]
    drawn = choices[int(rng.integers(len(choices)))]
    if kind is None:
        kind = drawn
        if from_rest and not to_rest and kind == "pull_out":
            kind = "push_in"  # a pull-out cannot start on the whole picture
        if to_rest and not from_rest and kind == "push_in":
            kind = "pull_out"
    reach = min(max(speed, 0.3), 2.0)
    tight = min(1.0 + float(rng.uniform(0.1, MAX_ZOOM - 1.0)) * reach, PLATE_LIMIT)
    margin = margin_at(tight) * _TRAVEL
    aim = Camera(tight, float(rng.uniform(-margin, margin)), float(rng.uniform(-margin, margin)))
    # Faster pans frame tighter, which leaves them a wider margin to sweep across.
    pan_zoom = min(1.12 + 0.3 * max(reach - 1.0, 0.0), PLATE_LIMIT)
    pan = margin_at(pan_zoom) * _TRAVEL * min(reach, 1.0)
    across = float(rng.uniform(-pan / 3, pan / 3))
    wide = Camera(float(rng.uniform(1.0, 1.03)))
    start, end = wide, aim
    if kind == "pull_out":
        start, end = aim, wide
    elif kind in ("pan_left", "pan_right"):  # "pan_left": the view's centre goes right to left
        sign = -1.0 if kind == "pan_left" else 1.0
        start, end = Camera(pan_zoom, -sign * pan, across), Camera(pan_zoom, sign * pan, across)
    elif kind in ("pan_up", "pan_down"):
        sign = -1.0 if kind == "pan_up" else 1.0
        start, end = Camera(pan_zoom, across, -sign * pan), Camera(pan_zoom, across, sign * pan)
    elif kind == "drift":  # a slow diagonal float with a slight zoom
        zoom_a, zoom_b = float(rng.uniform(1.06, 1.1)), float(rng.uniform(1.1, 1.14))
        drift = margin_at(zoom_a) * _TRAVEL * min(reach, 1.0)
        sx, sy = (float(v) for v in rng.choice([-1.0, 1.0], size=2))
        start = Camera(zoom_a, sx * drift, sy * drift)
        end = Camera(zoom_b, -sx * drift * 0.5, -sy * drift * 0.5)
    elif kind == "static":  # a locked-off camera, only breathing so the picture is not frozen
        start, end = Camera(1.0), Camera(1.0 + 0.015 * reach)
    keys = [start.clamped(), end.clamped()]
    # Pinned ends: replace the framing there with the whole picture. Every move still reads
    # the same way, since the other end keeps its direction and zoom.
    if from_rest and to_rest:
        middle = keys[1] if keys[1] != REST else keys[0]
        if middle.zoom - 1.0 < 0.02:
            middle = aim
        keys = [REST, middle, REST]
    elif from_rest:
        keys = [REST, keys[1] if keys[1].zoom > 1.0 + 1e-6 else aim]
    elif to_rest:
        keys = [keys[0] if keys[0].zoom > 1.0 + 1e-6 else aim, REST]
    return MotionPath(kind, tuple(keys), ease_in=from_rest, ease_out=to_rest)


def plate_size(output: tuple[int, int], scale: float = MAX_ZOOM) -> tuple[int, int]:
    """The size a picture is prepared at for moves as tight as `scale`."""
    return (math.ceil(output[0] * scale), math.ceil(output[1] * scale))


def interpolation(preset: Preset) -> int:
    """The warp/resize filter of a preset: bilinear for speed, bicubic for quality."""
    return cv2.INTER_LINEAR if preset == "fast" else cv2.INTER_CUBIC


def view_matrix(
    camera: Camera, plate: tuple[int, int], output: tuple[int, int]
) -> NDArray[np.float64]:
    """The 2x3 map from output pixel to plate pixel (for `WARP_INVERSE_MAP`).

    Pixel centres are mapped onto pixel centres, so a zoom of exactly 1 over a plate of the
    output's size would be the identity.
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
    plate: NDArray[np.uint8], camera: Camera, output: tuple[int, int], *, flags: int
) -> NDArray[np.uint8]:
    """One output frame: the plate seen through `camera`, resampled with `flags`."""
    matrix = view_matrix(camera, (plate.shape[1], plate.shape[0]), output)
    frame = cv2.warpAffine(
        plate,
        matrix,
        output,
        flags=flags | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT_101,
    )
    return frame  # type: ignore[return-value]


def exposure(
    path: MotionPath, progress: float, step: float, plate: tuple[int, int], output: tuple[int, int]
) -> list[Camera]:
    """The framings to average for one frame: one when the camera is slow, several across
    the frame's exposure when it sweeps more than a couple of output pixels."""
    half = step * _SHUTTER / 2
    early, late = path.at(progress - half), path.at(progress + half)
    corners = np.array([[0, 0, 1], [output[0], 0, 1], [0, output[1], 1], [*output, 1]], float)
    a = corners @ view_matrix(early, plate, output).T
    b = corners @ view_matrix(late, plate, output).T
    scale = plate[0] / output[0] / max(early.zoom, late.zoom)  # plate pixels per output pixel
    sweep = float(np.max(np.hypot(*(b - a).T))) / scale
    if sweep < _BLUR_THRESHOLD_PX:
        return [path.at(progress)]
    count = min(_MAX_BLUR_SAMPLES, math.ceil(sweep / _BLUR_STEP_PX))
    return [path.at(progress - half + 2 * half * (i + 0.5) / count) for i in range(count)]


def render_exposure(
    plate: NDArray[np.uint8], cameras: list[Camera], output: tuple[int, int], *, flags: int
) -> NDArray[np.uint8]:
    """The average of the plate seen through each of `cameras`: motion blur when several.

    Blurred frames sample bilinearly whatever `flags` asks: the average of the samples is
    softer along the motion than any filter's difference, at a seventh of bicubic's cost.
    """
    if len(cameras) == 1:
        return render_view(plate, cameras[0], output, flags=flags)
    total = np.zeros((output[1], output[0], plate.shape[2]), dtype=np.float32)
    for camera in cameras:
        cv2.accumulate(render_view(plate, camera, output, flags=cv2.INTER_LINEAR), total)
    return cv2.convertScaleAbs(total, alpha=1.0 / len(cameras))  # type: ignore[return-value]
