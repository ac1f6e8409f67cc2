"""The land of a drawn scene: layered silhouettes from far to near.

Each layer is an edge (`top`: the row where land begins, per column) filled below with
its colour, drawn over what is behind it with an antialiased edge. Far layers fade into
the haze of the light, as distant land does; faces turned toward the sun are lit and the
others shaded, most strongly when the sun is low. Mountains are ridges by midpoint
displacement, trees are cones and crowns along gentle hills, dunes are swells sharpened
to a crest between a lit and a shaded face, fields roll and wave in the wind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from r2v.engines.compositor.animation import Slide, Twinkle
from r2v.engines.compositor.scenery import RGB, FloatArray
from r2v.engines.compositor.skies import Canvas, noise, smoothstep

_ROCK: RGB = (92, 98, 112)
_SNOW: RGB = (238, 242, 250)
_PINE: RGB = (40, 78, 48)
_SNOW_TINT = 0.55
_SAND: RGB = (212, 166, 112)
_GRASS: RGB = (96, 142, 58)
_WHEAT: RGB = (204, 172, 92)


def land_colour(canvas: Canvas, base: RGB, haze: float, *, tinted: float = 1.0) -> FloatArray:
    """`base` in the scene's light, `haze` (0-1) of the way into the distance's haze;
    `tinted` is how much the light's colour takes (snow, bright, keeps its own more)."""
    light = canvas.light
    tint = 1.0 - tinted + tinted * np.asarray(light.tint, dtype=np.float32)
    lit: FloatArray = np.asarray(base, dtype=np.float32) * tint
    return lit + (np.asarray(light.haze, dtype=np.float32) - lit) * haze


def ridge(rng: np.random.Generator, width: int, roughness: float, detail: int = 2) -> FloatArray:
    """A ridge line (0 low - 1 high) across `width` columns by midpoint displacement: each
    halving of the step adds bumps `roughness` times the size of the last."""
    size = 2 ** math.ceil(math.log2(max(2, width // detail))) + 1
    line = np.zeros(size, dtype=np.float64)
    line[[0, -1]] = rng.uniform(0.0, 1.0, 2)
    step, scale = size - 1, 1.0
    while step > 1:
        half = step // 2
        mids = (line[0:-1:step] + line[step::step]) / 2
        line[half::step] = mids + rng.uniform(-scale, scale, mids.size)
        step, scale = half, scale * roughness
    xs = np.linspace(0, size - 1, width)
    out: FloatArray = np.interp(xs, np.arange(size), line)
    shares: FloatArray = ((out - out.min()) / max(float(np.ptp(out)), 1e-6)).astype(np.float32)
    return shares


def waves(rng: np.random.Generator, width: int, cycles: float, parts: int = 3) -> FloatArray:
    """A smooth seeded curve (-1 - 1) with about `cycles` swells across `width`."""
    xs = np.arange(width, dtype=np.float32) / width * 2 * math.pi
    out = np.zeros(width, dtype=np.float32)
    for part in range(parts):
        frequency = cycles * float(rng.uniform(0.6, 1.4)) * (1.7**part)
        out += np.sin(xs * frequency + float(rng.uniform(0, 2 * math.pi))) / (1.8**part)
    return out / max(float(np.abs(out).max()), 1e-6)


@dataclass(frozen=True)
class Band:
    """The rows a layer covers, from `first` down, and the grid its fill is computed on:
    sample rows and columns (plate pixel centres) every `step` pixels, since fills are
    smooth where edges are not; `top` is the layer's edge at the sample columns."""

    first: int
    rows: FloatArray
    """(n, 1)."""
    cols: FloatArray
    """(1, m)."""
    top: FloatArray
    """(1, m)."""

    @property
    def below(self) -> FloatArray:
        """(n, m): how far each sample lies below the edge, in pixels (0 above it)."""
        below: FloatArray = np.clip(self.rows - self.top, 0.0, None)
        return below


def band_of(canvas: Canvas, top: FloatArray, step: tuple[int, int] = (4, 4)) -> Band:
    """The band of a layer with edge `top` (per column), sampled every `step` (x, y)."""
    first = min(max(0, int(math.floor(float(top.min())))), canvas.height - 1)
    count_x = math.ceil(canvas.width / step[0])
    count_y = math.ceil((canvas.height - first) / step[1])
    cols = (np.arange(count_x, dtype=np.float32) + 0.5) * canvas.width / count_x
    rows = first + (np.arange(count_y, dtype=np.float32) + 0.5) * (canvas.height - first) / count_y
    edge = np.interp(cols, np.arange(canvas.width, dtype=np.float32) + 0.5, top)
    return Band(first, rows[:, None], cols[None, :], edge.astype(np.float32)[None, :])


def paint_land(canvas: Canvas, top: FloatArray, band: Band, fill: FloatArray) -> None:
    """Draw land below `top` (per column) in `fill` (computed on `band`'s grid, or anything
    that broadcasts to it), enlarged to the plate and edged with antialiasing; where it
    lands, the plate's alpha says land."""
    grid = np.zeros((band.rows.shape[0], band.cols.shape[1], 4), dtype=np.uint8)
    grid[..., :3] = np.clip(np.broadcast_to(fill, (*grid.shape[:2], 3)), 0, 255)
    region = canvas.plate[band.first :]
    size = (region.shape[1], region.shape[0])
    paint = grid if grid.shape[:2] == region.shape[:2] else cv2.resize(grid, size)
    xs = np.arange(canvas.width, dtype=np.float32) + 0.5
    outline = np.concatenate(
        [np.stack([xs, top - band.first], axis=1), [[canvas.width, size[1] + 1], [0, size[1] + 1]]]
    )
    mask = np.zeros(region.shape[:2], dtype=np.uint8)
    points = np.round(outline * 16).astype(np.int32)
    cv2.fillPoly(mask, [points], 255, cv2.LINE_AA, shift=4)
    reach = min(size[1], math.ceil(float(top.max())) - band.first + 2)  # the edge's rows
    edge = np.nonzero((mask[:reach] > 0) & (mask[:reach] < 255))
    before = region[edge].astype(np.float32)
    cv2.copyTo(paint, mask, region)
    weight = mask[edge].astype(np.float32)[:, None] / 255.0
    region[edge] = (before + (paint[edge] - before) * weight).astype(np.uint8)


def shaded(
    canvas: Canvas, top: FloatArray, band: Band, colour: FloatArray, contrast: float,
    reach: float, *, lean: float = 0.3, smooth: float = 0.004,
) -> FloatArray:  # fmt: skip
    """`colour` lit by the faces of the edge `top`: brighter where they turn toward the
    sun, darker away, most near the edge and fading over `reach` rows below it; a lower
    sun lights more unevenly. A face runs down from the edge leaning `lean` columns a row
    away from the sun, as the faces of ridges and dunes do, not straight down; its slope
    is read from the edge smoothed over `smooth` of the width, so that small bumps do not
    streak it."""
    width = top.size
    edge = cv2.GaussianBlur(top[None, :], (0, 0), max(1.0, smooth * width))[0]
    xs = np.arange(width, dtype=np.float32) + 0.5
    # Where the sun is, seen from each column: to the right (+1) or left (-1); straight
    # ahead near its own column, where neither face is lit more.
    toward = np.tanh((canvas.sun[0] - xs) / (0.06 * width))
    low = 1.0 - 0.6 * min(max(canvas.light.elevation, 0.0), 1.0)
    faces = np.tanh(np.gradient(edge) * toward * 1.2 * low)
    side = np.tanh((canvas.sun[0] - band.cols) / (0.06 * width))
    reading = np.clip(band.cols + lean * band.below * side, 0, width - 1)
    face = np.interp(reading.ravel(), xs, faces).reshape(reading.shape)
    fade = np.exp(-band.below / reach)
    light = 1.0 + contrast * face * (0.35 + 0.65 * fade)
    lit: FloatArray = (colour[None, None, :] * light[..., None]).astype(np.float32)
    return lit


def misted(canvas: Canvas, band: Band, fill: FloatArray, foot: float, amount: float) -> FloatArray:
    """`fill` fading into the haze toward `foot` (a row): mist lying in the valleys."""
    haze = np.asarray(canvas.light.haze, dtype=np.float32)
    share = smoothstep(foot - 0.12 * canvas.height, foot, band.rows) * amount
    return fill + (haze - fill) * share[..., None]


def paint_mountains(canvas: Canvas) -> None:
    """Four ranges, far ones high and pale, near ones low and dark; by day the far ones
    capped with snow above a ragged line."""
    rng, width, height = canvas.rng, canvas.width, canvas.height
    night = canvas.light.night
    ranges = ((0.62, 0.30, 0.6), (0.71, 0.25, 0.4), (0.81, 0.2, 0.2), (0.94, 0.16, 0.05))
    for layer, (foot, rise, haze) in enumerate(ranges):
        top = (foot - rise * ridge(rng, width, float(rng.uniform(0.5, 0.6))) ** 1.3) * height
        band = band_of(canvas, top)
        rock = land_colour(canvas, _ROCK, haze)
        fill = shaded(canvas, top, band, rock, 0.08 if night else 0.35, 0.08 * height,
                      lean=0.5, smooth=0.008)  # fmt: skip
        grain = noise(rng, (band.cols.shape[1], band.rows.shape[0]), 18.0, stretch=0.6)
        fill = fill * (0.9 + 0.2 * grain)[..., None]
        if layer < 2 and not night:
            line = (foot - rise * 0.72) * height + (grain - 0.5) * 0.08 * height
            cap = (1.0 - smoothstep(-3.0, 3.0, band.rows - line)) * 0.9
            white = land_colour(canvas, _SNOW, haze, tinted=_SNOW_TINT)
            snow = shaded(canvas, top, band, white, 0.3, 0.1 * height)
            fill = fill + (snow - fill) * cap[..., None]
        mist = (0.45 if layer < 3 else 0.15) * (0.4 if night else 1.0)
        fill = misted(canvas, band, fill, foot * height, mist)
        paint_land(canvas, top, band, fill)


def _trees(
    canvas: Canvas, size: float, conifers: float, spacing: float
) -> tuple[FloatArray, FloatArray]:
    """A tree line: each column's height above the ground, and which side of its tree
    it is on (+1 the sunny side, -1 the other): cones and round crowns about `size` pixels
    tall, `conifers` of them cones, `spacing` crowns apart (1: touching)."""
    rng, width = canvas.rng, canvas.width
    heights = np.zeros(width, dtype=np.float32)
    sides = np.zeros(width, dtype=np.float32)
    x = -size * float(rng.uniform(0.0, 1.0))
    while x < width + size:
        tall = size * float(rng.uniform(0.6, 1.25))
        cone = bool(rng.random() < conifers)
        half = tall * (0.22 if cone else 0.5)
        lo, hi = max(0, int(x - half)), min(width, int(x + half) + 1)
        if lo < hi:
            along = np.arange(lo, hi, dtype=np.float32) + 0.5 - x
            offset = np.abs(along) / half
            if cone:
                shape = tall * np.clip(1.0 - offset, 0.0, 1.0) ** 0.9
            else:  # a round crown, its sides falling steeply to the ground
                shape = tall * np.clip(1.0 - offset**2, 0.0, 1.0) ** 0.45
            taller = shape > heights[lo:hi]
            heights[lo:hi] = np.where(taller, shape, heights[lo:hi])
            side = np.sign(along) * (1.0 if x < canvas.sun[0] else -1.0)
            sides[lo:hi] = np.where(taller, side, sides[lo:hi])
        x += half * spacing * float(rng.uniform(0.75, 1.3))
    needles = rng.uniform(-0.5, 0.5, width).astype(np.float32) * max(1.0, size * 0.03)
    return heights + needles * (heights > 0), sides


def paint_forest(canvas: Canvas) -> None:
    """Four tree lines on rolling ground: small and hazy far off, tall and dark near, each
    tree lit on its sunny side."""
    rng, width, height = canvas.rng, canvas.width, canvas.height
    conifers = float(rng.uniform(0.5, 0.95))
    lines = ((0.64, 0.03, 0.45, 0.9), (0.74, 0.05, 0.28, 0.9), (0.86, 0.09, 0.12, 1.0),
             (1.0, 0.24, 0.0, 1.9))  # fmt: skip
    for foot, size, haze, spacing in lines:
        ground = foot * height - (waves(rng, width, 1.5) * 0.5 + 0.5) * 0.07 * height
        heights, sides = _trees(canvas, size * height, conifers if foot < 1 else 1.0, spacing)
        top = ground - heights
        band = band_of(canvas, top, (2, 4))
        green = land_colour(canvas, _PINE, haze) * (0.8 if foot == 1.0 else 1.0)
        fill = np.broadcast_to(green, (*band.below.shape, 3))
        if size >= 0.09:  # near trees show a sunny side and a shaded one
            side = np.interp(band.cols, np.arange(width) + 0.5, sides).astype(np.float32)
            fade = np.exp(-band.below / (size * height * 0.35))
            fill = fill * (1.0 + 0.22 * side * fade)[..., None]
        if foot < 1.0:
            fill = misted(canvas, band, fill, foot * height, 0.25)
        paint_land(canvas, top, band, fill)


def paint_desert(canvas: Canvas) -> None:
    """Four rows of dunes: sharp crests between a sunlit face and a shaded one."""
    rng, width, height = canvas.rng, canvas.width, canvas.height
    rows = ((0.64, 0.05, 0.5), (0.72, 0.08, 0.32), (0.83, 0.12, 0.15), (0.98, 0.16, 0.0))
    for foot, rise, haze in rows:
        swell = waves(rng, width, float(rng.uniform(0.8, 1.6)), parts=2)
        crest = (1.0 - np.abs(swell)) ** 1.6
        top = (foot - rise * crest) * height
        band = band_of(canvas, top)
        sand = land_colour(canvas, _SAND, haze)
        fill = shaded(canvas, top, band, sand, 0.28, 0.2 * height, lean=0.8)
        paint_land(canvas, top, band, fill)


def paint_snowfield(canvas: Canvas) -> None:
    """Snowy mountains far off, then rolling snow, glinting where the light catches it."""
    rng, width, height = canvas.rng, canvas.width, canvas.height
    top = (0.62 - 0.2 * ridge(rng, width, 0.45) ** 1.4) * height
    band = band_of(canvas, top)
    white = land_colour(canvas, _SNOW, 0.35, tinted=_SNOW_TINT)
    snow = shaded(canvas, top, band, white, 0.2, 0.06 * height, lean=0.5, smooth=0.008)
    paint_land(canvas, top, band, misted(canvas, band, snow, 0.62 * height, 0.5))
    glints: list[tuple[NDArray[np.int64], NDArray[np.int64]]] = []
    for foot, rise in ((0.7, 0.04), (0.82, 0.06), (0.97, 0.09)):
        top = (foot - rise * (waves(rng, width, 1.2) * 0.5 + 0.5)) * height
        band = band_of(canvas, top)
        white = land_colour(canvas, _SNOW, 0.1, tinted=_SNOW_TINT)
        blue = white * np.asarray((0.78, 0.85, 1.0), dtype=np.float32)
        fill = shaded(canvas, top, band, white, 0.12, 0.05 * height)
        deep = smoothstep(0.0, 0.1 * height, band.below)[..., None]
        paint_land(canvas, top, band, fill + (blue - fill) * deep * 0.5)
        count = int(width * 0.15)
        across = rng.integers(0, width, count)
        down = top[across] + 3 + rng.random(count) * (height - top[across])
        glints.append((down.astype(np.int64).clip(0, height - 1), across))
    ys = np.concatenate([down for down, _ in glints])
    xs = np.concatenate([across for _, across in glints])
    canvas.animations.append(
        Twinkle(
            ys,
            xs,
            np.full((ys.size, 3), 255.0, dtype=np.float32),
            rates=rng.uniform(0.8, 2.5, ys.size).astype(np.float32),
            phases=rng.uniform(0, 2 * math.pi, ys.size).astype(np.float32),
            mode="flash",
        )
    )


def _lone_trees(canvas: Canvas, ground: FloatArray, leaves: FloatArray) -> None:
    """A few trees standing alone on a field's `ground`: a trunk and a crown of a few
    overlapping rounds, the sunny side lighter."""
    rng, plate, height = canvas.rng, canvas.plate, canvas.height
    shift = 4  # drawn with sub-pixel precision: 1/16 of a pixel
    for _ in range(int(rng.integers(2, 6))):
        x = float(rng.uniform(0.05, 0.95)) * canvas.width
        base = float(ground[int(x)]) + 2.0
        tall = float(rng.uniform(0.04, 0.075)) * height
        dark = tuple(float(c) * 0.8 for c in leaves) + (0.0,)
        trunk = [np.round(np.array([[x, base], [x, base - tall * 0.6]]) * 16).astype(np.int32)]
        cv2.polylines(plate, trunk, False, dark, max(1, round(tall * 0.07)), cv2.LINE_AA, shift)
        toward = 1.0 if x < canvas.sun[0] else -1.0
        for part in range(5):
            cx = x + float(rng.uniform(-0.22, 0.22)) * tall
            cy = base - tall * float(rng.uniform(0.55, 0.8))
            radius = tall * float(rng.uniform(0.2, 0.3))
            lit = 0.85 + 0.12 * part / 4 + (0.08 if (cx - x) * toward > 0 else 0.0)
            colour = tuple(float(c) * lit for c in leaves) + (0.0,)
            centre = (round(cx * 16), round(cy * 16))
            cv2.circle(plate, centre, round(radius * 16), colour, -1, cv2.LINE_AA, shift)


GUST_SPEED = 0.04
"""How fast gusts of wind cross a field: a share of the plate's width a second."""


def paint_field(canvas: Canvas) -> None:
    """A line of woods on the horizon, rolling fields in patches of green and ripe crops
    with a few lone trees, tall grass near, and waves of wind running across it."""
    rng, width, height = canvas.rng, canvas.width, canvas.height
    ground = 0.63 * height - (waves(rng, width, 1.0) * 0.5 + 0.5) * 0.02 * height
    top: FloatArray = ground - _trees(canvas, 0.025 * height, 0.2, 1.0)[0]
    band = band_of(canvas, top)
    paint_land(canvas, top, band, shaded(canvas, top, band, land_colour(canvas, _PINE, 0.4), 0.2,
                                         0.02 * height))  # fmt: skip
    ripe = float(rng.uniform(0.0, 0.7))
    for foot, rise, haze in ((0.69, 0.03, 0.3), (0.79, 0.05, 0.12), (1.0, 0.12, 0.0)):
        top = (foot - rise * (waves(rng, width, 1.3) * 0.5 + 0.5)) * height
        closest = foot == 1.0
        if closest:  # the grass's blades along its edge
            top = top - rng.uniform(0, 0.012 * height, width).astype(np.float32)
        share = min(max(ripe + float(rng.uniform(-0.35, 0.35)), 0.0), 1.0)
        crop = np.asarray(_GRASS, np.float32) * (1 - share) + np.asarray(_WHEAT, np.float32) * share
        band = band_of(canvas, top, (1, 4) if closest else (4, 4))
        size = (band.cols.shape[1], band.rows.shape[0])
        patches: FloatArray = cv2.resize(  # type: ignore[assignment]
            noise(rng, (size[0] // 8 + 2, size[1] + 2), 4.0, stretch=3.0), size
        )
        base = land_colour(canvas, (float(crop[0]), float(crop[1]), float(crop[2])), haze)
        fill = shaded(canvas, top, band, base, 0.35, 0.1 * height, lean=0.6)
        fill = fill * (0.85 + 0.3 * patches)[..., None]
        if closest:
            blades = noise(rng, (size[0], max(2, size[1] // 3)), size[0] / 4.0, stretch=0.2)
            blades = cv2.resize(blades, size, interpolation=cv2.INTER_LINEAR)  # type: ignore[assignment]
            fill = fill * (0.88 + 0.22 * blades)[..., None]
        paint_land(canvas, top, band, fill)
        if foot == 0.79:
            _lone_trees(canvas, top, land_colour(canvas, _PINE, haze))
    travel = math.ceil(GUST_SPEED * width * canvas.seconds) + 2
    rows = int(0.3 * height)
    gusts: FloatArray = cv2.resize(  # type: ignore[assignment]
        noise(rng, ((width + travel) // 4, rows // 4), 3.0, stretch=3.0), (width + travel, rows)
    )
    lift = land_colour(canvas, (60, 60, 40), 0.0) * smoothstep(0.5, 0.9, gusts)[..., None] * 0.6
    layer = np.zeros((rows, width + travel, 4), dtype=np.uint8)
    layer[..., :3] = np.clip(lift, 0, 255).astype(np.uint8)
    speed = GUST_SPEED * width * float(rng.choice([-1.0, 1.0]))
    canvas.animations.append(Slide(layer, canvas.plate, height - rows, speed, clear=rows))
