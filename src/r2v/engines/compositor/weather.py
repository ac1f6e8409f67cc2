"""Weather over a shot: rain, snow or fog, seeded, and cheap enough to draw on every frame.

Each kind has a light and a layer. The light (`tone`) is a colour matrix composed with
the shot's grade, after its time of day and before its look (see `grades`), so it costs
nothing of its own: rain greys and dims the picture, snow brightens and cools it, fog
lowers its contrast and lifts its blacks toward the fog's colour. The layer, grey, is
added over the graded frame: streaks of rain, flakes of snow, or banks of fog drifting
across. The particles (or the noise) are drawn once per render from the request's seed
on a stream of their own, and frame n places them by the clock alone, so the weather runs
on unbroken across cuts and dissolves.

Rain and snow are drawn anti-aliased at sub-pixel positions on a single channel of the
output's size (a few hundred short lines or discs cost a few tenths of a millisecond at
720p); fog's soft noise at an eighth of it, enlarged. A streak of rain is its drop's
travel during a 180-degree exposure, which is the drop's motion blur; snow falls slowly,
each flake swaying on its own, the nearer ones larger, brighter and faster.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from r2v.engines.compositor.grades import Frame, Matrix, recipe
from r2v.engines.compositor.phrases import Weather
from r2v.engines.compositor.storyboard import STREAM_WEATHER
from r2v.protocol import FPS

TONES: dict[Weather, Matrix] = {
    "rain": recipe(saturation=0.8, exposure=0.86, contrast=0.95, gains=(0.96, 0.99, 1.04)),
    "snow": recipe(saturation=0.85, exposure=1.04, contrast=0.9, gains=(0.97, 1.0, 1.05),
                   lift=(0.03, 0.03, 0.04)),
    "fog": recipe(saturation=0.75, contrast=0.6, lift=(0.02, 0.03, 0.05)),
}  # fmt: skip
KINDS: tuple[Weather, ...] = ("rain", "snow", "fog")

_SHIFT = 3  # sub-pixel bits of the drawing calls' coordinates
_ONE = 1 << _SHIFT
_EXPOSURE = 0.5 / FPS  # a 180-degree shutter: a streak is the drop's travel over this

# Every streak and flake is moving detail the encoder must spend bits on, frame after
# frame: these densities keep a fast 720p render's time within about a quarter of a
# clear one's.
_RAIN_PER_AREA = 80  # drops on screen per square of the frame's height
_RAIN_LEVELS = (30, 50, 80)  # far, middle and near drops' brightness
_SNOW_PER_AREA = 70
_FOG_SCALE = 8
_FOG_DENSITY = 90  # the most a bank of fog adds, of 255


class WeatherLayer:
    """One kind of weather over frames of one size; particles seeded by the render's seed."""

    def __init__(self, kind: Weather, seed: int, size: tuple[int, int]) -> None:
        self.kind, self.size = kind, size
        self.tone = TONES[kind]
        rng = np.random.default_rng([seed, STREAM_WEATHER, KINDS.index(kind)])
        width, height = size
        self._field: _Rain | _Snow | _Fog
        if kind == "rain":
            self._field, drawn = _Rain(rng, width / height), size
        elif kind == "snow":
            self._field, drawn = _Snow(rng, width / height), size
        else:
            drawn = (max(8, width // _FOG_SCALE), max(8, height // _FOG_SCALE))
            self._field = _Fog(rng, drawn)
        # Buffers kept between frames: fresh memory of a frame's size costs more to touch
        # than drawing the weather does.
        self._canvas = np.zeros((drawn[1], drawn[0]), dtype=np.uint8)
        self._grey = self._canvas if drawn == size else np.zeros((height, width), np.uint8)
        self._layer = np.zeros((height, width, 3), dtype=np.uint8)
        self._drawn: int | None = None

    def layer(self, index: int) -> Frame:
        """What the weather adds to output frame `index`, as an RGB frame of full size
        (valid until another frame's is asked for)."""
        if self._drawn != index:
            self._canvas.fill(0)
            self._field.draw(self._canvas, index / FPS)
            if self._grey is not self._canvas:
                cv2.resize(self._canvas, self.size, self._grey, interpolation=cv2.INTER_LINEAR)
            cv2.cvtColor(self._grey, cv2.COLOR_GRAY2RGB, dst=self._layer)
            self._drawn = index
        return self._layer

    def over(self, frame: Frame, index: int) -> Frame:
        """`frame` (RGB, already in the weather's light, and the caller's own to change)
        with frame `index`'s layer added."""
        return cv2.add(frame, self.layer(index), dst=frame)  # type: ignore[return-value]


class _Rain:
    """Drops falling fast on one slant (the wind's), nearer ones longer and brighter.

    Positions are in units of the frame's height; a drop that leaves the frame comes back
    at the top (or the far side), so the density stays even.
    """

    def __init__(self, rng: np.random.Generator, aspect: float) -> None:
        count = round(_RAIN_PER_AREA * aspect)
        depth = np.sort(rng.uniform(0.0, 1.0, count))  # far to near: each level a slice
        self.speed = (1.0 + 1.4 * depth) * rng.uniform(0.9, 1.1, count)  # heights a second
        self.slant = float(rng.uniform(0.18, 0.32) * rng.choice([-1.0, 1.0]))  # dx per dy
        self.length = self.speed * _EXPOSURE + 0.015 + 0.03 * depth
        reach = float(self.length.max())
        self.pad = abs(self.slant) * (1.0 + reach)
        self.span = (aspect + 2 * self.pad, 1.0 + reach)
        self.x0 = rng.uniform(0.0, self.span[0], count)
        self.y0 = rng.uniform(0.0, self.span[1], count)
        levels = len(_RAIN_LEVELS)
        self.bounds = np.searchsorted(depth, np.arange(levels + 1) / levels).tolist()
        self.bounds[-1] = count

    def draw(self, canvas: NDArray[np.uint8], seconds: float) -> None:
        fall = self.speed * seconds
        head_y = np.mod(self.y0 + fall, self.span[1]) - (self.span[1] - 1.0)
        head_x = np.mod(self.x0 + self.slant * fall, self.span[0]) - self.pad
        tail_y, tail_x = head_y - self.length, head_x - self.slant * self.length
        unit = canvas.shape[0] * _ONE  # drawing units per frame height
        ends = np.stack([tail_x, tail_y, head_x, head_y], axis=1) * unit
        segments = np.rint(ends).astype(np.int32).reshape(-1, 2, 2)
        for group, level in enumerate(_RAIN_LEVELS):
            start, end = self.bounds[group], self.bounds[group + 1]
            if end > start:
                cv2.polylines(canvas, segments[start:end], False, level, 1, cv2.LINE_AA, _SHIFT)


class _Snow:
    """Flakes of many sizes drifting down, each swaying on its own; near ones are larger,
    brighter and faster."""

    def __init__(self, rng: np.random.Generator, aspect: float) -> None:
        count = round(_SNOW_PER_AREA * aspect)
        depth = rng.uniform(0.0, 1.0, count) ** 1.5
        self.radius = 0.0015 + 0.006 * depth  # frame heights
        self.speed = 0.05 + 0.14 * depth
        self.level = (140 + 115 * depth).astype(int)
        self.sway = rng.uniform(0.004, 0.02, count)
        self.rate = rng.uniform(0.25, 0.8, count) * 2 * math.pi
        self.phase = rng.uniform(0.0, 2 * math.pi, count)
        self.wind = float(rng.uniform(-0.03, 0.03))
        self.span = (aspect + 0.1, 1.05)
        self.x0 = rng.uniform(0.0, self.span[0], count)
        self.y0 = rng.uniform(0.0, self.span[1], count)

    def draw(self, canvas: NDArray[np.uint8], seconds: float) -> None:
        y = np.mod(self.y0 + self.speed * seconds, self.span[1]) - 0.025
        x = self.x0 + self.wind * seconds + self.sway * np.sin(self.rate * seconds + self.phase)
        x = np.mod(x, self.span[0]) - 0.05
        unit = canvas.shape[0] * _ONE
        centres = np.rint(np.stack([x, y], axis=1) * unit).astype(np.int32).tolist()
        radii = np.maximum(np.rint(self.radius * unit), _ONE // 2).astype(np.int32).tolist()
        for (cx, cy), radius, level in zip(centres, radii, self.level.tolist(), strict=True):
            cv2.circle(canvas, (cx, cy), radius, level, -1, cv2.LINE_AA, _SHIFT)


class _Fog:
    """Two banks of soft noise drifting sideways at different speeds, denser low down."""

    def __init__(self, rng: np.random.Generator, size: tuple[int, int]) -> None:
        width, height = size
        self.banks: list[tuple[NDArray[np.float32], float]] = []
        for blur, speed in ((0.12, 0.035), (0.06, 0.06)):
            soft = _soft_noise(rng, (2 * width, height), blur * width)
            direction = float(rng.choice([-1.0, 1.0]))
            self.banks.append((soft, direction * speed * width))  # pixels a second
        self.ramp = np.linspace(0.55, 1.0, height, dtype=np.float32)[:, None] * _FOG_DENSITY

    def draw(self, canvas: NDArray[np.uint8], seconds: float) -> None:
        height, width = canvas.shape
        total = np.zeros((height, width), dtype=np.float32)
        for soft, speed in self.banks:
            shift = np.array([[1.0, 0.0, speed * seconds], [0.0, 1.0, 0.0]])
            total += cv2.warpAffine(
                soft, shift, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_WRAP,
            )  # fmt: skip
        canvas[:] = (np.clip(total - 0.4, 0.0, 1.0) * self.ramp).astype(np.uint8)


def _soft_noise(
    rng: np.random.Generator, size: tuple[int, int], blur: float
) -> NDArray[np.float32]:
    """Smooth noise of `size` (width, height) in 0-1, blurred by `blur` pixels in the
    frequency domain, so that it wraps around its edges without a seam."""
    width, height = size
    noise = np.fft.rfft2(rng.standard_normal((height, width)))
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    gaussian = np.exp(-2 * (math.pi * blur) ** 2 * (fx**2 + fy**2))
    soft = np.fft.irfft2(noise * gaussian, (height, width)).astype(np.float32)
    soft -= soft.min()
    soft /= max(float(soft.max()), 1e-9)
    return soft
