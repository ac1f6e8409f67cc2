"""The sea of a drawn scene: water to the horizon, ripples running, the sun's glitter.

The water is the horizon's colour far off and deep water's near, with the sun's (or the
moon's) reflection laid on it as a soft column that widens toward the viewer. Ripples are
two streaked layers, one lighter and one darker, drawn once in perspective (thin lines
near the horizon, broad near the viewer) and slid in opposite directions, faster nearer,
so their crossing looks like moving water. Glints flare and die along the sun's path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from r2v.engines.compositor.animation import Twinkle
from r2v.engines.compositor.scenery import FloatArray
from r2v.engines.compositor.skies import Canvas, noise, smoothstep
from r2v.engines.compositor.terrain import band_of, land_colour, paint_land, ridge
from r2v.protocol import FPS

SWELL_PACE = 0.8
"""How fast ripples come in: the nearest move about this many pixels a frame."""
DRIFT_SPEED = 0.004
"""How fast ripples drift sideways: a share of the plate's width a second."""
_DEPTHS = (0.0, 0.12, 0.3, 0.6, 1.0)
"""Bands of the water's depth (0 at the horizon, 1 at the bottom), each with its own
ripple strength: faint far off, where their lines crowd, strong near."""
_FLAT_ROWS = 384
"""Rows of the flat ripple texture: the distance after which ripples repeat."""
_SPREAD = 1.5
"""Screen rows one row of the flat texture spans at the bottom of the frame, about."""


@dataclass(frozen=True)
class Swell:
    """Ripples coming in: each row of water shows the row of a flat ripple texture at its
    distance, moving nearer with time, so lines broaden as they come, the way waves do in
    perspective. One texture a depth band (with that band's strength), gathered by rows:
    a copy of the water's pixels and one addition a frame."""

    plate: NDArray[np.uint8]
    textures: tuple[NDArray[np.uint8], ...]
    bands: tuple[tuple[int, int], ...]
    """Plate rows (start, end) of each depth band."""
    distance: NDArray[np.float32]
    """Per plate row from the first band's start: its row of the flat texture at rest."""
    first: int
    rate: float
    """Texture rows a second the ripples come in."""
    drift: float
    """Pixels a second they drift sideways."""

    @property
    def rows(self) -> tuple[int, int]:
        return (self.bands[0][0], self.bands[-1][1])

    def apply(self, frame: NDArray[np.uint8], seconds: float) -> None:
        width = frame.shape[1]
        travel = self.textures[0].shape[1] - width
        step = min(travel, int(abs(self.drift) * seconds))
        shift = travel - step if self.drift > 0 else step
        rows = np.floor(self.distance + self.rate * seconds).astype(np.int64) % _FLAT_ROWS
        for texture, (start, end) in zip(self.textures, self.bands, strict=True):
            if start >= end:
                continue
            view = texture[:, shift : shift + width]
            picked = view[rows[start - self.first : end - self.first]]
            cv2.add(self.plate[start:end], picked, dst=frame[start:end])


def paint_sea(canvas: Canvas) -> None:
    """Open water from the horizon down, perhaps a far coast, the sun's path on it."""
    rng, width, height, light = canvas.rng, canvas.width, canvas.height, canvas.light
    horizon = canvas.horizon
    if rng.random() < 0.5:  # a low, hazy coast along part of the horizon
        side = np.linspace(0.0, 1.0, width, dtype=np.float32)
        side = side if rng.random() < 0.5 else side[::-1]
        reach = float(rng.uniform(0.2, 0.45))
        span = 1.0 - smoothstep(reach - 0.12, reach, side)
        top = horizon - (0.25 + 0.75 * ridge(rng, width, 0.5)) * span * 0.05 * height
        band = band_of(canvas, top)
        paint_land(canvas, top, band, land_colour(canvas, (80, 92, 96), 0.7)[None, None, :])
    top = np.full(width, horizon, dtype=np.float32)
    band = band_of(canvas, top)
    depth = np.clip((band.rows - horizon) / (height - horizon), 0.0, 1.0)
    far = light.sky_at(np.ones(1, dtype=np.float32))[0] * 0.88
    deep = np.asarray(light.water, dtype=np.float32)
    water = far + (deep - far) * (smoothstep(0.0, 0.55, depth) ** 0.8)[..., None]
    sx, sy = canvas.sun
    shown = sy < horizon + light.radius * canvas.unit
    path = np.exp(-(((band.cols - sx) / ((0.02 + 0.1 * depth) * width)) ** 2)) * (1 - 0.85 * depth)
    glow = np.asarray(light.glow, dtype=np.float32) * 0.55 + np.asarray(light.sun) * 0.45
    strength = light.glow_strength * 0.8 if shown else 0.0
    paint_land(canvas, top, band, water + (glow - water) * (path * strength)[..., None])
    canvas.animations.append(_swell(canvas, band.first, deep))
    if shown:
        canvas.animations.append(_glitter(canvas, band.first, height - band.first))


def _swell(canvas: Canvas, first: int, deep: FloatArray) -> Swell:
    """The water's ripples from the row `first` down: a flat texture of long streaks and
    swells (calm water seen from the shore is banded more than patched), lighter where it
    crests and darker in its troughs. The water drawn beneath is darkened by as much as
    the deepest trough takes away, so that the ripples only ever add light."""
    rng, light, plate = canvas.rng, canvas.light, canvas.plate
    width, height = canvas.width, canvas.height
    rows = height - first
    travel = math.ceil(DRIFT_SPEED * width * canvas.seconds) + 2
    columns = (width + travel) // 4 + 2
    flat = noise(rng, (columns, _FLAT_ROWS), columns / 10.0, stretch=22.0)
    swell = cv2.GaussianBlur(rng.standard_normal((_FLAT_ROWS, 1)), (1, 0), 2.5)
    swell = (swell - swell.min()) / max(float(np.ptp(swell)), 1e-6)
    pattern = 0.5 * swell.astype(np.float32) + 0.5 * flat
    crest = smoothstep(0.5, 0.85, pattern)[..., None]
    trough = smoothstep(0.55, 0.15, pattern)[..., None]
    sky_low = light.sky_at(np.ones(1, dtype=np.float32))[0]
    lift = 0.36 * sky_low + 0.14 * np.asarray(light.sun, dtype=np.float32)
    sink = 0.55 * deep + 12.0
    small = np.zeros((_FLAT_ROWS, columns, 4), dtype=np.uint8)
    small[..., :3] = np.clip(crest * lift + (1.0 - trough) * sink, 0, 255).astype(np.uint8)
    full = cv2.resize(small, (width + travel, _FLAT_ROWS))
    textures: list[NDArray[np.uint8]] = []
    bands: list[tuple[int, int]] = []
    for near, far in zip(_DEPTHS[1:], _DEPTHS, strict=False):
        middle = (near + far) / 2
        strength = float(smoothstep(0.0, 0.3, np.full(1, middle))[0]) * (0.45 + 0.55 * middle)
        textures.append(cv2.convertScaleAbs(full, alpha=strength))  # type: ignore[arg-type]
        start, end = first + int(far * rows), first + int(near * rows)
        bands.append((start, end))
        region = plate[start:end]
        darker = (*(float(c) for c in np.clip(sink * strength, 0, 255)), 0.0)
        cv2.subtract(region, darker, dst=region)  # type: ignore[call-overload]
    depth = (np.arange(rows, dtype=np.float32) + 0.5) / rows
    distance = (rows / _SPREAD) / (depth + 0.03)
    # Near the bottom a texture row spans _SPREAD * 1.03**2 screen rows: come in at the pace.
    rate = SWELL_PACE * FPS / (_SPREAD * 1.03**2)
    drift = DRIFT_SPEED * width * float(rng.choice([-1.0, 1.0]))
    return Swell(plate, tuple(textures), tuple(bands), distance.astype(np.float32), first, rate,
                 drift)  # fmt: skip


def _glitter(canvas: Canvas, first: int, rows: int) -> Twinkle:
    """Short bright dashes scattered along the sun's path, each flaring in its own time."""
    rng, width = canvas.rng, canvas.width
    count = int(width * 0.35)
    depth = rng.random(count) ** 0.8
    ys = (first + depth * (rows - 1)).astype(np.int64)
    spread = (0.015 + 0.12 * depth) * width
    centres = canvas.sun[0] + rng.standard_normal(count) * spread
    lengths = (2 + 7 * depth * rng.random(count)).astype(np.int64)
    colour = np.asarray(canvas.light.sun, dtype=np.float32)
    all_y, all_x, rates, phases = [], [], [], []
    rate = rng.uniform(2.0, 7.0, count)
    phase = rng.uniform(0, 2 * math.pi, count)
    for offset in range(int(lengths.max())):
        keep = offset < lengths
        all_y.append(ys[keep])
        all_x.append((centres[keep] + offset - lengths[keep] / 2).astype(np.int64))
        rates.append(rate[keep])
        phases.append(phase[keep])
    y, x = np.concatenate(all_y), np.concatenate(all_x)
    inside = (x >= 0) & (x < width)
    brightness = (1.0 - 0.5 * (y - first) / rows)[:, None] * colour[None, :]
    return Twinkle(
        y[inside], x[inside], brightness[inside].astype(np.float32),
        rates=np.concatenate(rates)[inside].astype(np.float32),
        phases=np.concatenate(phases)[inside].astype(np.float32), mode="flash",
    )  # fmt: skip
