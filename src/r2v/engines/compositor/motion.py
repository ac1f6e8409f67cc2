"""Seeded camera moves over a still picture: push-in, pull-out, pans and drift.

A picture is prepared once per shot as a *plate*: fitted to the output size enlarged by
`MAX_ZOOM`, so that at the tightest zoom one plate pixel lands on one output pixel. Each
frame is then a single `cv2.warpAffine` from the plate with a sub-pixel affine map, which
makes motion smooth however slow it is and costs about one resize per frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from r2v.engines.base import Preset

MotionKind = Literal["push_in", "pull_out", "pan_left", "pan_right", "pan_up", "pan_down", "drift"]
MOTION_KINDS: tuple[MotionKind, ...] = (
    "push_in",
    "pull_out",
    "pan_left",
    "pan_right",
    "pan_up",
    "pan_down",
    "drift",
)

MAX_ZOOM = 1.18
"""The tightest framing: the view then shows 1/MAX_ZOOM of the picture's width and height."""

_PAN_ZOOM = 1.12
_TRAVEL = 0.9  # share of the available margin a pan crosses, keeping clear of the edges


@dataclass(frozen=True)
class Camera:
    """A framing of the plate: `zoom` >= 1 (1 shows all of it) and the view's centre.

    `x` and `y` are the centre's offset from the plate's centre as a fraction of the plate's
    width and height; they stay within the margin the zoom leaves, so the view never leaves
    the picture.
    """

    zoom: float
    x: float = 0.0
    y: float = 0.0

    def clamped(self) -> Camera:
        """This framing, pulled back inside the allowed zoom and the picture's edges."""
        zoom = min(max(self.zoom, 1.0), MAX_ZOOM)
        margin = (1.0 - 1.0 / zoom) / 2
        return Camera(zoom, min(max(self.x, -margin), margin), min(max(self.y, -margin), margin))


REST = Camera(1.0)
"""The whole picture, centred: where a pinned first or last frame starts or ends."""


@dataclass(frozen=True)
class MotionPath:
    """A camera move from `start` to `end` over a shot.

    `ease_in` / `ease_out` slow the move to rest at that end (used for pinned frames);
    otherwise the move keeps some speed at the cut, so shots never look frozen at their ends.
    """

    kind: MotionKind
    start: Camera
    end: Camera
    ease_in: bool = False
    ease_out: bool = False

    def at(self, progress: float) -> Camera:
        """The framing at `progress` (0 at the shot's first frame, 1 at its last)."""
        p = min(max(progress, 0.0), 1.0)
        smooth = p * p * (3 - 2 * p)
        # Linear where an end may keep moving, smoothstep where it must come to rest.
        if self.ease_in and self.ease_out:
            eased = smooth
        elif self.ease_in:
            eased = 1 - math.cos(p * math.pi / 2) if p < 1 else 1.0
        elif self.ease_out:
            eased = math.sin(p * math.pi / 2)
        else:
            eased = 0.5 * p + 0.5 * smooth
        a, b = self.start, self.end
        return Camera(
            a.zoom + (b.zoom - a.zoom) * eased,
            a.x + (b.x - a.x) * eased,
            a.y + (b.y - a.y) * eased,
        ).clamped()


def random_path(
    rng: np.random.Generator, *, from_rest: bool = False, to_rest: bool = False
) -> MotionPath:
    """A seeded move; `from_rest` / `to_rest` make it start or end on the whole picture."""
    kind = MOTION_KINDS[int(rng.integers(len(MOTION_KINDS)))]
    # Only a zoom can start or end on the whole picture: a pan needs a margin to travel in.
    if from_rest:
        kind = "push_in"
    elif to_rest:
        kind = "pull_out"
    tight = float(rng.uniform(1.10, MAX_ZOOM))
    margin = (1.0 - 1.0 / tight) / 2 * _TRAVEL
    aim = Camera(tight, float(rng.uniform(-margin, margin)), float(rng.uniform(-margin, margin)))
    wide = REST if (from_rest or to_rest) else Camera(float(rng.uniform(1.0, 1.03)))
    pan = (1.0 - 1.0 / _PAN_ZOOM) / 2 * _TRAVEL
    across = float(rng.uniform(-pan / 3, pan / 3))
    if kind == "push_in":
        start, end = wide, aim
    elif kind == "pull_out":
        start, end = aim, wide
    elif kind == "pan_left":  # the camera moves left: the view's centre goes right to left
        start, end = Camera(_PAN_ZOOM, pan, across), Camera(_PAN_ZOOM, -pan, across)
    elif kind == "pan_right":
        start, end = Camera(_PAN_ZOOM, -pan, across), Camera(_PAN_ZOOM, pan, across)
    elif kind == "pan_up":
        start, end = Camera(_PAN_ZOOM, across, pan), Camera(_PAN_ZOOM, across, -pan)
    elif kind == "pan_down":
        start, end = Camera(_PAN_ZOOM, across, -pan), Camera(_PAN_ZOOM, across, pan)
    else:  # drift: a slow diagonal float with a slight zoom
        zoom_a, zoom_b = float(rng.uniform(1.06, 1.1)), float(rng.uniform(1.1, 1.14))
        reach = (1.0 - 1.0 / zoom_a) / 2 * _TRAVEL
        sx, sy = rng.choice([-1.0, 1.0], size=2)
        start = Camera(zoom_a, float(sx) * reach, float(sy) * reach)
        end = Camera(zoom_b, -float(sx) * reach * 0.5, -float(sy) * reach * 0.5)
    return MotionPath(kind, start.clamped(), end.clamped(), ease_in=from_rest, ease_out=to_rest)


def plate_size(output: tuple[int, int]) -> tuple[int, int]:
    """The size a picture is prepared at, so the tightest zoom still has a pixel per pixel."""
    return (math.ceil(output[0] * MAX_ZOOM), math.ceil(output[1] * MAX_ZOOM))


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
