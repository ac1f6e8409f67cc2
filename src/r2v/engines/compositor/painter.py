"""The painter of scenes drawn from the words: a plate drawn once per shot, then livened.

`ScenePainter` draws a `ScenePlan` onto a plate at the size the shot's camera needs: the
sky of its hour (`skies`), the place (`terrain`, `sea`, `skyline`, `space`), then the
clouds, which drift behind the land. Each frame is that plate with its moving parts
applied (`animation`: ripples, drifting clouds, twinkling stars, lit windows, specks of
light), for a frame's cost of a copy, a few passes over bands of rows and a few thousand
pixel writes, whatever the place. The camera (`shots.SceneSource`) then sees it pixel
for pixel when it pans or holds still (`shifted_view`: a blend of two crops), or through
a warp when it zooms, which costs several times that.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np
from numpy.typing import NDArray

from r2v.engines.compositor.animation import Motes
from r2v.engines.compositor.motion import Camera, MotionPath
from r2v.engines.compositor.phrases import Place
from r2v.engines.compositor.scenery import ScenePlan
from r2v.engines.compositor.sea import paint_sea
from r2v.engines.compositor.skies import Canvas, paint_clouds, paint_sky, paint_stars, paint_sun
from r2v.engines.compositor.skyline import paint_city
from r2v.engines.compositor.space import paint_space
from r2v.engines.compositor.terrain import (
    paint_desert,
    paint_field,
    paint_forest,
    paint_mountains,
    paint_snowfield,
)

_HORIZONS: dict[Place, float] = {
    "sea": 0.56, "mountains": 0.7, "city": 0.8, "forest": 0.66, "desert": 0.63,
    "snowfield": 0.64, "field": 0.63, "space": 1.0,
}  # fmt: skip
"""Where the sky meets the land, as a share of the height."""
_LANDS: dict[Place, Callable[[Canvas], None]] = {
    "sea": paint_sea, "mountains": paint_mountains, "city": paint_city,
    "forest": paint_forest, "desert": paint_desert, "snowfield": paint_snowfield,
    "field": paint_field,
}  # fmt: skip
_STARS = 0.0009
"""Stars a pixel of night sky."""
_OVERCAST = 0.75
"""The cloud cover of a sky under rain, snow or fog."""


class ScenePainter:
    """Draws `plan` once on a plate of `size` (width, height) for a shot of `seconds`, and
    gives the plate as it is at any moment of the shot."""

    def __init__(self, plan: ScenePlan, size: tuple[int, int], seconds: float) -> None:
        rng = np.random.default_rng(plan.seed)
        width, height = size
        light = plan.light
        horizon = height * (_HORIZONS[plan.place] + float(rng.uniform(-0.02, 0.02)))
        sun_x = width * float(rng.uniform(0.3, 0.7))
        sun_y = horizon * (1.0 - light.elevation)
        plate = np.zeros((height, width, 4), dtype=np.uint8)
        canvas = Canvas(plate, horizon, (sun_x, sun_y), light, rng, seconds)
        if plan.place == "space":
            paint_space(canvas)
        else:
            paint_sky(canvas)
            stars = paint_stars(canvas, int(width * horizon * _STARS)) if light.night else None
            if not plan.overcast:
                paint_sun(canvas)
            _LANDS[plan.place](canvas)
            if stars is not None:
                canvas.animations.append(stars.over_sky(plate))
            cover = light.cloud_cover * (0.5 if plan.place == "desert" else 1.0)
            cover = max(cover, _OVERCAST) if plan.overcast else cover
            paint_clouds(canvas, cover * float(rng.uniform(0.6, 1.2)))
            _specks(canvas, plan)
        self._plate = plate
        self._work = plate.copy()
        # Layers that redraw whole rows go first, and those rows are not copied.
        whole = [a for a in canvas.animations if a.rows[1] > a.rows[0]]
        self._animations = tuple(whole + [a for a in canvas.animations if a.rows[1] <= a.rows[0]])
        self._copies = _uncovered(height, sorted(a.rows for a in whole))

    def plate_at(self, seconds: float) -> NDArray[np.uint8]:
        """The plate `seconds` into the shot (a buffer reused by the next call)."""
        for start, end in self._copies:
            np.copyto(self._work[start:end], self._plate[start:end])
        for animation in self._animations:
            animation.apply(self._work, seconds)
        return self._work


def pan_axes(motion: MotionPath) -> tuple[bool, bool] | None:
    """Along which axes (x, y) a move that keeps its zoom travels, for `shifted_view`; None
    when it zooms, and needs a warp."""
    keys = motion.keys
    if any(key.zoom != keys[0].zoom for key in keys):
        return None
    return (any(k.x != keys[0].x for k in keys), any(k.y != keys[0].y for k in keys))


def shifted_view(
    plate: NDArray[np.uint8],
    camera: Camera,
    output: tuple[int, int],
    along: tuple[bool, bool] = (True, True),
) -> NDArray[np.uint8]:
    """`plate`, drawn at `camera`'s zoom, seen through it pixel for pixel: a crop at whole
    pixels, blended with the crop one pixel on along each axis the camera moves (`along`:
    x, y), so that a slow pan glides between pixels. Along an axis it holds, the crop
    rounds to whole pixels (a constant fraction of a pixel shows nothing). This costs a
    pass or two over the frame where a warp costs several times that."""
    width, height = output
    room_x, room_y = plate.shape[1] - width, plate.shape[0] - height
    left = min(max(plate.shape[1] * (0.5 + camera.x) - width / 2, 0.0), float(room_x))
    top = min(max(plate.shape[0] * (0.5 + camera.y) - height / 2, 0.0), float(room_y))
    x, y = (math.floor(left), math.floor(top))
    fx, fy = (left - x if along[0] else 0.0), (top - y if along[1] else 0.0)
    if not along[0]:
        x = min(round(left), room_x)
    if not along[1]:
        y = min(round(top), room_y)
    fx = fx if x < room_x else 0.0
    fy = fy if y < room_y else 0.0
    tall = height + (1 if fy > 0.0 else 0)
    view = plate[y : y + tall, x : x + width]
    if fx > 0.0:
        right = plate[y : y + tall, x + 1 : x + 1 + width]
        view = cv2.addWeighted(view, 1.0 - fx, right, fx, 0.0)  # type: ignore[assignment]
    if fy > 0.0:
        return cv2.addWeighted(view[:height], 1.0 - fy, view[1:], fy, 0.0)  # type: ignore[return-value]
    return np.ascontiguousarray(view[:height])


def _uncovered(height: int, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The runs of rows 0 to `height` outside the sorted `spans`, which must not overlap
    (two layers redrawing the same rows from the plate would undo each other)."""
    runs: list[tuple[int, int]] = []
    position = 0
    for start, end in spans:
        if start < position:
            raise ValueError("layers redraw overlapping rows")
        if start > position:
            runs.append((position, start))
        position = end
    if position < height:
        runs.append((position, height))
    return runs


def _specks(canvas: Canvas, plan: ScenePlan) -> None:
    """Fireflies in the dusk and the night, pollen and dust in the day, over woods and
    fields."""
    if plan.place not in ("forest", "field"):
        return
    dark = canvas.light.night or plan.time == "dusk"
    height, width = canvas.height, canvas.width
    box = (0, int(canvas.horizon), width, height)
    colour = (170.0, 230.0, 90.0) if dark else (120.0, 110.0, 80.0)
    count = 20 if dark else 14
    canvas.animations.append(
        Motes.seeded(
            canvas.rng, box, count, colour, speed=0.012 * height, pulse=0.9 if dark else 0.4
        )  # fmt: skip
    )
