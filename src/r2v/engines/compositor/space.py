"""Outer space: no ground and no horizon, a nebula's coloured clouds, a field of stars,
sometimes a planet.

The nebula is two or three veils of filtered noise in seeded hues, faint and soft; the
stars are many and small, the brightest with a halo and four fine spikes; a planet, when
there is one, is lit from one side with a thin glowing rim of atmosphere.
"""

from __future__ import annotations

import colorsys
import math

import cv2
import numpy as np

from r2v.engines.compositor.skies import Canvas, noise, paint_stars, smoothstep

_HUES = (0.55, 0.62, 0.75, 0.85, 0.93, 0.08, 0.48)
"""Nebula hues: teal, blue, violet, magenta, rose, amber, cyan."""


def paint_space(canvas: Canvas) -> None:
    """The black of space, a nebula across it, stars (twinkling), perhaps a planet. The
    nebula is smooth: it is made at a quarter of the size and enlarged."""
    rng, width, height = canvas.rng, canvas.width, canvas.height
    small = (width // 4 + 1, height // 4 + 1)
    ys, xs = np.mgrid[0 : small[1], 0 : small[0]].astype(np.float32)
    deep = (
        np.asarray((3, 4, 12), np.float32)
        + np.asarray((4, 2, 8), np.float32) * (ys / small[1])[..., None]
    )
    angle = float(rng.uniform(-0.6, 0.6))
    across = (ys - small[1] * float(rng.uniform(0.3, 0.7))) * math.cos(angle) - (
        xs - small[0] / 2
    ) * math.sin(angle)
    lane = np.exp(-((across / (0.4 * small[1])) ** 2))  # where the nebula gathers
    sky = deep
    for _ in range(int(rng.integers(2, 4))):
        hue = _HUES[int(rng.integers(len(_HUES)))] + float(rng.uniform(-0.03, 0.03))
        colour = np.asarray(colorsys.hsv_to_rgb(hue % 1.0, 0.7, 1.0), np.float32) * 255
        veil = noise(rng, small, float(rng.uniform(2.5, 4.0)), falloff=1.3)
        wisps = noise(rng, small, float(rng.uniform(9.0, 14.0)), falloff=0.9)
        density = smoothstep(0.35, 0.95, veil * 0.65 + wisps * 0.35) ** 1.5 * lane
        sky = sky + colour * (density * float(rng.uniform(0.35, 0.55)))[..., None]
    grid = np.full((small[1], small[0], 4), 255, dtype=np.uint8)
    grid[..., :3] = np.clip(sky, 0, 255).astype(np.uint8)
    canvas.plate[...] = cv2.resize(grid, (width, height), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        _planet(canvas)
    stars = paint_stars(canvas, int(width * height * 0.0022), bottom=float(height))
    canvas.animations.append(stars.over_sky(canvas.plate))
    _spikes(canvas)


def _planet(canvas: Canvas) -> None:
    """A planet near a corner, banded, lit from one side, with a glowing rim."""
    rng, plate = canvas.rng, canvas.plate
    radius = canvas.unit * float(rng.uniform(0.12, 0.22))
    cx = (
        canvas.width * float(rng.choice([0.18, 0.82]))
        + float(rng.uniform(-0.05, 0.05)) * canvas.width
    )
    cy = canvas.height * float(rng.uniform(0.62, 0.85))
    x0, x1 = max(0, int(cx - radius * 1.2)), min(canvas.width, int(cx + radius * 1.2))
    y0, y1 = max(0, int(cy - radius * 1.2)), min(canvas.height, int(cy + radius * 1.2))
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = (xs + 0.5 - cx) / radius, (ys + 0.5 - cy) / radius
    distance = np.hypot(dx, dy)
    cover = np.clip((1.0 - distance) * radius + 0.5, 0.0, 1.0)
    sun = np.asarray((math.cos(0.6), -math.sin(0.6)), np.float32) * float(rng.choice([-1, 1]))
    z = np.sqrt(np.clip(1.0 - distance**2, 0.0, 1.0))
    lit = np.clip(dx * sun[0] + dy * sun[1] + 0.25 * z, 0.0, 1.0) ** 0.8
    hue = float(rng.uniform(0.0, 1.0))
    bands = 0.8 + 0.2 * np.sin(dy * float(rng.uniform(8, 16)) + np.sin(dx * 3.0))
    base = np.asarray(colorsys.hsv_to_rgb(hue, 0.45, 0.9), np.float32) * 255
    surface = base * (lit * bands)[..., None] + 4.0
    rim = np.exp(-(((distance - 1.0) / 0.035) ** 2)) * (0.3 + 0.7 * lit)
    region = plate[y0:y1, x0:x1, :3].astype(np.float32)
    region = region + (surface - region) * cover[..., None]
    region += rim[..., None] * np.asarray((120, 170, 255), np.float32) * 0.8
    plate[y0:y1, x0:x1, :3] = np.clip(region, 0, 255).astype(np.uint8)
    plate[y0:y1, x0:x1, 3] = np.where(cover > 0.5, 0, plate[y0:y1, x0:x1, 3])


def _spikes(canvas: Canvas) -> None:
    """A few bright stars with a halo and four fine spikes, as a lens draws them."""
    rng, plate = canvas.rng, canvas.plate
    for _ in range(int(rng.integers(2, 5))):
        x, y = int(rng.integers(20, canvas.width - 20)), int(rng.integers(20, canvas.height - 20))
        if plate[y, x, 3] < 128:
            continue
        reach = int(canvas.unit * float(rng.uniform(0.02, 0.04)))
        offsets = np.arange(-reach, reach + 1)
        fade = np.exp(-np.abs(offsets) / (reach / 3.0))[:, None] * np.asarray((220, 230, 255))
        for rows, cols in (
            (y + offsets, np.full_like(offsets, x)),
            (np.full_like(offsets, y), x + offsets),
        ):
            keep = (rows >= 0) & (rows < canvas.height) & (cols >= 0) & (cols < canvas.width)
            current = plate[rows[keep], cols[keep], :3].astype(np.float32)
            plate[rows[keep], cols[keep], :3] = np.clip(current + fade[keep], 0, 255).astype(
                np.uint8
            )
        ys, xs = np.mgrid[y - 3 : y + 4, x - 3 : x + 4]
        halo = np.exp(-((ys - y) ** 2 + (xs - x) ** 2) / 3.0)[..., None] * 255.0
        current = plate[y - 3 : y + 4, x - 3 : x + 4, :3].astype(np.float32)
        plate[y - 3 : y + 4, x - 3 : x + 4, :3] = np.clip(current + halo, 0, 255).astype(np.uint8)
