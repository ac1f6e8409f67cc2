"""The sky of a drawn scene: its gradient and glow, the sun or the moon, stars, clouds.

Everything is drawn once per shot onto the scene's plate (`Canvas`), an RGBA picture whose
alpha says where the sky still shows (255) and where land was drawn over it (0): the
stars that twinkle and the clouds that drift touch only the sky. Smooth parts (the
gradient and its glow, the clouds) are computed at a quarter of the size and enlarged,
since they lose nothing there and cost a sixteenth; edges (the discs, the stars) are drawn
at full size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from r2v.engines.compositor.animation import Animation, Slide, Twinkle
from r2v.engines.compositor.scenery import FloatArray, Light

_SMOOTH = 4
"""Smooth layers are computed at 1/_SMOOTH of the plate's size."""
CLOUD_SPEED = 0.012
"""How fast clouds drift: a share of the plate's width a second, at most."""


@dataclass
class Canvas:
    """A scene being drawn: the plate, where the horizon and the sun are, the light, the
    seeded generator every draw comes from, and the animations collected on the way."""

    plate: NDArray[np.uint8]
    horizon: float
    """The row where the sky meets the land (or the sea)."""
    sun: tuple[float, float]
    """The sun's (or moon's) centre, in plate pixels; below the horizon when it has set."""
    light: Light
    rng: np.random.Generator
    seconds: float
    """The shot's length: how far sliding layers must reach."""
    animations: list[Animation] = field(default_factory=list)

    @property
    def width(self) -> int:
        return int(self.plate.shape[1])

    @property
    def height(self) -> int:
        return int(self.plate.shape[0])

    @property
    def unit(self) -> float:
        """The plate's smaller side: sizes of round things scale with it."""
        return float(min(self.width, self.height))


def noise(
    rng: np.random.Generator,
    size: tuple[int, int],
    cells: float,
    *,
    stretch: float = 1.0,
    falloff: float = 1.1,
) -> FloatArray:
    """Soft random texture of `size` (width, height), values 0-1: white noise filtered to
    features about `size[0] / cells` wide and `stretch` times wider than tall, finer detail
    fading as `falloff` says (about 1: rough, like terrain; 2: billowing, like clouds)."""
    width, height = max(2, size[0]), max(2, size[1])
    white = rng.standard_normal((height, width)).astype(np.float32)
    fy = np.fft.fftfreq(height)[:, None] * height
    fx = np.fft.rfftfreq(width)[None, :] * width * stretch
    radius = np.sqrt(fx * fx + fy * fy * (width / height) ** 2) / cells
    spectrum = np.fft.rfft2(white) / (1.0 + radius**2) ** falloff
    spectrum[0, 0] = 0.0
    field_ = np.fft.irfft2(spectrum, s=(height, width)).astype(np.float32)
    low, high = float(field_.min()), float(field_.max())
    return (field_ - low) / max(high - low, 1e-6)


def smoothstep(low: float, high: float, value: FloatArray) -> FloatArray:
    """0 below `low`, 1 above `high`, and a smooth S between."""
    t: FloatArray = np.clip((value - low) / (high - low), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def paint_sky(canvas: Canvas) -> None:
    """The sky's gradient down to the horizon (its last colour continues below), brightened
    around the sun and along the horizon beneath it."""
    width, height, light = canvas.width, canvas.height, canvas.light
    small_w, small_h = width // _SMOOTH + 1, height // _SMOOTH + 1
    ys = (np.arange(small_h, dtype=np.float32)[:, None] + 0.5) * height / small_h
    xs = (np.arange(small_w, dtype=np.float32)[None, :] + 0.5) * width / small_w
    sky = light.sky_at(np.clip(ys[:, 0] / max(canvas.horizon, 1.0), 0.0, 1.0))[:, None, :]
    sx, sy = canvas.sun
    distance = np.hypot(xs - sx, ys - sy) / canvas.unit
    halo = np.exp(-distance / 0.16) * 0.75 + np.exp(-distance / 0.05) * 0.6
    band = np.exp(
        -(((xs - sx) / (0.9 * width)) ** 2) - ((ys - canvas.horizon) / (0.16 * height)) ** 2
    )
    glow = np.clip((halo + band * 0.6) * light.glow_strength, 0.0, 1.0)[..., None]
    sky = sky + (np.asarray(light.glow, dtype=np.float32) - sky) * glow * 0.85
    small = np.full((small_h, small_w, 4), 255, dtype=np.uint8)
    small[..., :3] = np.clip(sky + 0.5, 0, 255).astype(np.uint8)
    canvas.plate[...] = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def paint_sun(canvas: Canvas) -> None:
    """The sun's disc, softly edged, or by night the moon, in a seeded phase."""
    light, rng = canvas.light, canvas.rng
    radius = light.radius * canvas.unit
    sx, sy = canvas.sun
    reach = int(radius * 1.6) + 2
    x0, x1 = max(0, int(sx) - reach), min(canvas.width, int(sx) + reach)
    y0, y1 = max(0, int(sy) - reach), min(canvas.height, int(sy) + reach)
    if x0 >= x1 or y0 >= y1:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    distance = np.hypot(xs + 0.5 - sx, ys + 0.5 - sy)
    cover = np.clip(radius - distance + 0.5, 0.0, 1.0)
    colour = np.asarray(light.sun, dtype=np.float32)
    if light.night:  # the moon: grey seas on its face, and the shadow of its phase
        face = 0.86 + 0.14 * noise(rng, (x1 - x0, y1 - y0), 3.0)
        side = float(rng.choice([-1.0, 1.0])) * radius * float(rng.uniform(0.9, 1.6))
        shadow = np.clip(radius * 1.05 - np.hypot(xs + 0.5 - sx - side, ys + 0.5 - sy) + 0.5, 0, 1)
        cover = cover * (1.0 - 0.82 * shadow)
        paint = colour * face[..., None]
    else:  # the sun: a hot centre, a little darker toward its rim
        paint = colour * (1.0 - 0.06 * (distance / radius).clip(0, 1) ** 2)[..., None]
    region = canvas.plate[y0:y1, x0:x1, :3].astype(np.float32)
    mixed = region + (paint - region) * cover[..., None]
    canvas.plate[y0:y1, x0:x1, :3] = np.clip(mixed, 0, 255).astype(np.uint8)


def paint_stars(canvas: Canvas, count: int, *, bottom: float | None = None) -> Twinkle:
    """`count` stars over the sky down to `bottom` (the horizon), fading toward it, a few
    bright ones with a soft halo; returns the twinkling of all but the faintest, to be set
    going once the land is drawn (`Twinkle.over_sky`)."""
    rng, plate = canvas.rng, canvas.plate
    limit = canvas.horizon if bottom is None else bottom
    ys = (limit * rng.random(count) ** 1.25).astype(np.int64).clip(0, canvas.height - 1)
    xs = rng.integers(0, canvas.width, count)
    strength = rng.random(count) ** 2.2 * (1.0 - 0.5 * ys / max(limit, 1.0))
    tints = np.array([[255, 244, 230], [230, 238, 255], [255, 255, 255], [255, 226, 200]])
    colours = tints[rng.integers(0, len(tints), count)].astype(np.float32)
    values = colours * (0.3 + 0.7 * strength[:, None])
    base = plate[ys, xs, :3].astype(np.float32)
    plate[ys, xs, :3] = np.maximum(base, values).astype(np.uint8)
    bright = np.flatnonzero(strength > 0.55)
    for dy, dx, share in ((0, 1, 0.4), (0, -1, 0.4), (1, 0, 0.4), (-1, 0, 0.4)):
        y = (ys[bright] + dy).clip(0, canvas.height - 1)
        x = (xs[bright] + dx).clip(0, canvas.width - 1)
        halo = values[bright] * share
        plate[y, x, :3] = np.maximum(plate[y, x, :3].astype(np.float32), halo).astype(np.uint8)
    lively = np.flatnonzero(strength > 0.12)
    return Twinkle(
        ys[lively], xs[lively], values[lively],
        rates=rng.uniform(1.5, 5.0, lively.size).astype(np.float32),
        phases=rng.uniform(0, 2 * math.pi, lively.size).astype(np.float32),
        depth=0.55,
    )  # fmt: skip


def paint_clouds(canvas: Canvas, cover: float) -> None:
    """Soft clouds over about `cover` of the sky, lit in the light's colour (brighter
    toward the sun) and thinning toward the horizon, drifting slowly across it behind the
    land. Drawn last: they need to know where the land is."""
    if cover <= 0.0:
        return
    rng, light = canvas.rng, canvas.light
    width, rows = canvas.width, max(8, int(canvas.horizon))
    speed = CLOUD_SPEED * width * float(rng.uniform(0.5, 1.0)) * float(rng.choice([-1.0, 1.0]))
    travel = math.ceil(abs(speed) * canvas.seconds) + 2
    low = light.night or light.elevation < 0.25  # low light draws clouds out into bands
    small = ((width + travel) // _SMOOTH + 2, rows // _SMOOTH + 2)
    cells = small[0] * _SMOOTH / width * (16.0 if low else 9.0)  # across the plate's width
    shape = noise(rng, small, cells, stretch=5.0 if low else 2.0, falloff=1.5)
    share = (np.arange(small[1], dtype=np.float32)[:, None] + 0.5) / small[1]
    envelope = smoothstep(0.0, 0.25, share) * (1.0 - smoothstep(0.65, 1.0, share) * 0.85)
    threshold = float(np.quantile(shape, 1.0 - cover))
    alpha = smoothstep(threshold - 0.05, threshold + 0.22, shape) * envelope
    sky = light.sky_at(np.clip(share[:, 0] * rows / canvas.horizon, 0.0, 1.0))[:, None, :]
    xs = (np.arange(small[0], dtype=np.float32)[None, :] + 0.5) * _SMOOTH - travel / 2
    near_sun = np.exp(-np.abs(xs - canvas.sun[0]) / (0.5 * width))[..., None]
    colour = np.asarray(light.clouds, dtype=np.float32) * (0.8 + 0.25 * near_sun)
    lit = (0.35 + 0.65 * share)[..., None]  # high clouds take more of the sky's colour
    lift = np.clip(colour - sky, 0.0, 255.0) * lit * (alpha * 0.9)[..., None]
    grid = np.zeros((small[1], small[0], 4), dtype=np.uint8)
    grid[..., :3] = np.clip(lift, 0, 255).astype(np.uint8)
    layer = cv2.resize(grid, (small[0] * _SMOOTH, small[1] * _SMOOTH))[:rows, : width + travel]
    canvas.animations.append(Slide.over_sky(canvas.plate, np.ascontiguousarray(layer), 0, speed))
