"""The city of a drawn scene: three rows of towers, their windows lit when it is dark.

Towers are seeded boxes, some stepped back near the top or crowned with a mast, far rows
small and hazy, the near row tall and dark against the sky. Their faces keep a grid of
windows, upright panes that catch the sky by day; from dusk on many are lit in warm or
cool light, a few go on and off while the shot runs, and red beacons blink on the masts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from r2v.engines.compositor.animation import Twinkle
from r2v.engines.compositor.scenery import RGB, FloatArray
from r2v.engines.compositor.skies import Canvas, smoothstep
from r2v.engines.compositor.terrain import band_of, land_colour, paint_land

_CONCRETE: RGB = (84, 90, 104)
_WARM = np.array([[255, 214, 150], [255, 196, 120], [255, 230, 180], [214, 232, 255]], np.float32)
_BEACON = (255, 54, 40)
_Pixels = tuple[NDArray[np.int64], NDArray[np.int64], FloatArray]
"""Rows, columns and colours of some pixels."""


@dataclass(frozen=True)
class _Tower:
    left: int
    right: int
    roof: int
    """The row of the roof's top."""


def paint_city(canvas: Canvas) -> None:
    """Three rows of towers, far to near, with windows; lights when the light is low."""
    rng, width, height = canvas.rng, canvas.width, canvas.height
    dark = canvas.light.night or canvas.light.elevation < 0.05
    lit_share = 0.42 if canvas.light.night else (0.22 if dark else 0.0)
    switching: list[_Pixels] = []
    beacons: list[tuple[int, int]] = []
    if dark:
        _sky_glow(canvas)
    rows = (
        (0.8, (0.06, 0.2), (0.018, 0.045), 0.55, 0.6),
        (0.9, (0.1, 0.32), (0.03, 0.065), 0.3, 0.8),
        (1.0, (0.16, 0.48), (0.05, 0.1), 0.06, 1.0),
    )
    for foot, heights, widths, haze, scale in rows:
        towers, top = _towers(rng, width, height, foot, heights, widths)
        band = band_of(canvas, top, (1, 4))
        tone = np.ones(width, dtype=np.float32)
        for tower in towers:
            tone[max(0, tower.left) : tower.right] = float(rng.uniform(0.8, 1.12))
        base = land_colour(canvas, _CONCRETE, haze) + (10.0 if dark else 0.0)
        sky_lit = 1.0 + 0.18 * (1.0 - smoothstep(0.0, 0.25 * height, band.below))
        paint_land(canvas, top, band, base * (tone[None, :] * sky_lit)[..., None])
        unit = max(1, round(height * 0.006 * scale))
        for tower in towers:
            pixels = _windows(canvas, tower, unit, lit_share, haze)
            if pixels is not None and dark and rng.random() < 0.25:
                switching.append(pixels)
        if dark and foot == 1.0:
            tall = sorted(towers, key=lambda t: t.roof)[:2]
            beacons += [((t.left + t.right) // 2, t.roof) for t in tall]
    if dark:
        _street_glow(canvas)
    if switching:
        canvas.animations.append(_flicker(canvas, switching))
    if beacons:
        _beacons(canvas, beacons)


def _towers(
    rng: np.random.Generator,
    width: int,
    height: int,
    foot: float,
    heights: tuple[float, float],
    widths: tuple[float, float],
) -> tuple[list[_Tower], FloatArray]:
    """A row of towers standing on `foot` (a share of the height), and the row's edge."""
    ground = foot * height
    top = np.full(width, ground, dtype=np.float32)
    towers: list[_Tower] = []
    x = -int(rng.uniform(0, widths[1]) * width)
    while x < width:
        span = int(rng.uniform(*widths) * width) + 2
        tall = rng.uniform(*heights) * height * (1.0 if rng.random() < 0.8 else 0.6)
        roof = int(ground - tall)
        _raise(top, x, x + span, roof)
        style = rng.random()
        if style < 0.3 and span > 8:  # stepped back near the top
            inset = max(2, span // 5)
            roof -= int(tall * float(rng.uniform(0.06, 0.15)))
            _raise(top, x + inset, x + span - inset, roof)
        elif style < 0.45:  # a mast
            mast, middle = max(1, span // 14), x + span // 2
            roof = int(roof - tall * 0.18)
            _raise(top, middle - mast, middle + mast, roof)
        towers.append(_Tower(max(0, x), min(width, x + span), roof))
        x += span + (int(rng.uniform(0, 0.012) * width) if rng.random() < 0.4 else 0)
    return towers, top


def _raise(top: FloatArray, left: int, right: int, roof: float) -> None:
    """Raise the edge `top` to `roof` over columns `left` to `right` (clipped to it)."""
    left, right = min(max(left, 0), top.size), min(max(right, 0), top.size)
    top[left:right] = np.minimum(top[left:right], roof)


def _windows(
    canvas: Canvas, tower: _Tower, unit: int, lit_share: float, haze: float
) -> _Pixels | None:
    """Draw `tower`'s grid of upright panes, glass reflecting the sky or, as `lit_share`
    says, lit; returns the pixels of one lit window (to go on and off), or None."""
    rng = canvas.rng
    pane_w, pane_h = unit, unit * 2 + 1
    pitch_x, pitch_y = unit * 2 + 1, pane_h + unit
    left, right = tower.left + unit + 1, tower.right - unit - 1
    roof = tower.roof + pane_h * 2
    tall, wide = canvas.height - roof, right - left
    across, down = (wide - pane_w) // pitch_x + 1, (tall - pane_h) // pitch_y + 1
    if across < 1 or down < 1:
        return None
    region = canvas.plate[roof : roof + down * pitch_y, left : left + across * pitch_x]
    wall = region[0, 0, :3].astype(np.float32)
    glass = wall * 0.8 + np.asarray(canvas.light.haze, np.float32) * 0.2 * (1.0 - haze)
    floors = rng.random(down) < 0.8  # whole floors dark, and some towers brighter
    lit = (rng.random((down, across)) < lit_share * float(rng.uniform(0.3, 1.7))) & floors[:, None]
    shades = _WARM[rng.integers(0, len(_WARM), (down, across))]
    shades = shades * rng.uniform(0.55, 1.0, (down, across, 1)).astype(np.float32)
    shades = shades * (1.0 - haze * 0.5) + wall * haze * 0.5
    cells = np.zeros((down, across, 4), dtype=np.uint8)
    cells[..., :3] = np.clip(np.where(lit[..., None], shades, glass), 0, 255)
    grid = (across * pitch_x, down * pitch_y)
    panes = cv2.resize(cells, grid, interpolation=cv2.INTER_NEAREST)
    cell = np.zeros((pitch_y, pitch_x), dtype=np.uint8)
    cell[:pane_h, :pane_w] = 255
    shown = region.shape[:2]  # the last row of cells may reach past the plate's foot
    mask = np.tile(cell, (down, across))[: shown[0]]
    cv2.copyTo(np.ascontiguousarray(panes[: shown[0]]), mask, region)
    if not lit.any():
        return None
    r, c = np.argwhere(lit)[rng.integers(0, int(lit.sum()))]
    y0, x0 = roof + int(r) * pitch_y, left + int(c) * pitch_x
    py, px = np.mgrid[y0 : y0 + pane_h, x0 : x0 + pane_w]
    values = np.broadcast_to(shades[r, c], (py.size, 3)).astype(np.float32)
    return py.ravel().astype(np.int64), px.ravel().astype(np.int64), values


def _flicker(canvas: Canvas, windows: list[_Pixels]) -> Twinkle:
    """Lit windows that go out and on again, each window's panes in step."""
    rng = canvas.rng
    sizes = [ys.size for ys, _, _ in windows]
    rates = np.repeat(rng.uniform(0.5, 1.3, len(windows)), sizes).astype(np.float32)
    phases = np.repeat(rng.uniform(0, 2 * math.pi, len(windows)), sizes).astype(np.float32)
    ys, xs, values = (np.concatenate(parts) for parts in zip(*windows, strict=True))
    return Twinkle(ys, xs, values, rates, phases, depth=0.85, mode="switch")


def _sky_glow(canvas: Canvas) -> None:
    """The glow a lit city casts on the sky above it, fading upward."""
    rows = int(canvas.horizon)
    share = (np.arange(rows, dtype=np.float32) + 0.5) / rows
    glow = np.exp((share - 1.0) / 0.22)[:, None] * np.asarray((40, 26, 36, 0), np.float32)
    _lighten(canvas, 0, glow)


def _street_glow(canvas: Canvas) -> None:
    """The warm haze of lit streets rising from the foot of the city."""
    reach = int(0.22 * canvas.height)
    rows = np.arange(reach, dtype=np.float32)[:, None] / reach
    _lighten(canvas, canvas.height - reach, rows**2 * np.asarray((46, 28, 14, 0), np.float32))


def _lighten(canvas: Canvas, top: int, light: FloatArray) -> None:
    """Add `light` (a colour a row, RGBA) to the plate's rows from `top`."""
    rows = np.clip(light + 0.5, 0, 255).astype(np.uint8)[:, None, :]
    band = canvas.plate[top : top + rows.shape[0]]
    cv2.add(band, np.ascontiguousarray(np.broadcast_to(rows, band.shape)), dst=band)


def _beacons(canvas: Canvas, places: list[tuple[int, int]]) -> None:
    """Red lights blinking on the tallest masts."""
    ys, xs = [], []
    for x, y in places:
        for dy in (0, 1):
            for dx in (0, 1):
                ys.append(max(0, y + dy - 1))
                xs.append(min(canvas.width - 1, max(0, x + dx - 1)))
    count = len(ys)
    rng = canvas.rng
    canvas.animations.append(
        Twinkle(
            np.asarray(ys, np.int64),
            np.asarray(xs, np.int64),
            np.tile(np.asarray(_BEACON, np.float32), (count, 1)),
            rates=np.full(count, 2 * math.pi / 1.6, np.float32),
            phases=np.repeat(rng.uniform(0, 2 * math.pi, count // 4), 4).astype(np.float32),
            depth=0.9,
            mode="switch",
        )
    )
