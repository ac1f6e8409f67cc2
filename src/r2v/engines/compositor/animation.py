"""What moves in a drawn scene, each frame, for the price of a few memory passes.

A scene's plate is drawn once per shot; each frame is the plate with these applied before
the camera views it. Each is cheap by construction, and those that redraw whole rows
(`Animation.rows`) read them from the plate straight into the frame, so the painter need
not copy those rows first:

- `Slide`: a layer drawn once at full size, wider than the plate, added to (or taken from)
  a band of rows at an offset that grows with time: clouds drift, ripples run, gusts cross
  a field. Offsets are whole pixels: these layers are soft or streaked along their motion,
  where a pixel's step does not show, and a whole-pixel view costs no resampling.
- `Twinkle`: single pixels (stars, lit windows, glints on the water) whose brightness
  follows a seeded wave: a few thousand writes.
- `Motes`: a few dozen soft specks (fireflies, pollen, dust) on slow seeded paths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from r2v.engines.compositor.scenery import FloatArray

Plate = NDArray[np.uint8]
"""An RGBA plate; alpha 255 where sky shows, 0 where land covers it."""
TwinkleMode = Literal["shine", "flash", "switch"]


class Animation(Protocol):
    """One moving part of a scene."""

    @property
    def rows(self) -> tuple[int, int]:
        """The rows (start, end) `apply` redraws whole from the scene's plate, whatever
        `frame` holds there; (0, 0) for none."""
        ...

    def apply(self, frame: Plate, seconds: float) -> None:
        """Draw this part into `frame` as it is at `seconds`: its `rows` afresh from the
        scene's plate, anything else over what `frame` already holds."""
        ...


@dataclass(frozen=True)
class Slide:
    """A layer (rows x (plate width + travel) x 4) sliding sideways over the rows of the
    scene's `plate` from `top`, `speed` pixels a second (positive: to the right), added.

    `mask` (0 or 255 in every channel, the band's shape) limits it to the sky; its first
    `clear` rows are sky across the whole width and need none.
    """

    layer: Plate
    plate: Plate
    top: int
    speed: float
    mask: Plate | None = None
    clear: int = 0
    scratch: Plate | None = None
    """Room for the masked part of the layer, reused frame after frame."""

    @classmethod
    def over_sky(cls, plate: Plate, layer: Plate, top: int, speed: float) -> Slide:
        """A slide that shows only where the plate's sky does (behind its land)."""
        rows = layer.shape[0]
        sky = plate[top : top + rows, :, 3] > 127
        full = sky.all(axis=1)
        clear = rows if full.all() else int(np.argmin(full))
        if clear == rows:
            return cls(layer, plate, top, speed, clear=clear)
        mask = np.repeat(np.where(sky[clear:, :, None], 255, 0).astype(np.uint8), 4, axis=2)
        return cls(layer, plate, top, speed, mask, clear, np.empty_like(mask))

    @property
    def rows(self) -> tuple[int, int]:
        return (self.top, self.top + self.clear)

    def apply(self, frame: Plate, seconds: float) -> None:
        width = frame.shape[1]
        travel = self.layer.shape[1] - width
        step = min(travel, round(abs(self.speed) * seconds))
        start = travel - step if self.speed > 0 else step
        view = self.layer[:, start : start + width]
        top, clear, rows = self.top, self.clear, view.shape[0]
        cv2.add(self.plate[top : top + clear], view[:clear], dst=frame[top : top + clear])
        if clear < rows:
            part = view[clear:]
            if self.mask is not None and self.scratch is not None:
                part = cv2.bitwise_and(part, self.mask, dst=self.scratch)  # type: ignore[assignment]
            band = frame[top + clear : top + rows]
            cv2.add(band, part, dst=band)


@dataclass(frozen=True)
class Twinkle:
    """Pixels at (`ys`, `xs`) whose colours (`values`, float RGB) breathe over time.

    "shine" dims each by up to `depth` on a seeded wave (stars); "flash" keeps them dark
    but for brief flares (glints on water or snow); "switch" turns them on and off
    (windows, a beacon). Dimming takes light away from what the frame holds, so a star
    behind a drifting cloud keeps the cloud's light.
    """

    ys: NDArray[np.int64]
    xs: NDArray[np.int64]
    values: FloatArray
    rates: FloatArray
    phases: FloatArray
    depth: float = 0.5
    mode: TwinkleMode = "shine"

    rows = (0, 0)

    def over_sky(self, plate: Plate) -> Twinkle:
        """Only the pixels the land left uncovered."""
        keep = plate[self.ys, self.xs, 3] > 127
        return Twinkle(
            self.ys[keep], self.xs[keep], self.values[keep], self.rates[keep],
            self.phases[keep], self.depth, self.mode,
        )  # fmt: skip

    def apply(self, frame: Plate, seconds: float) -> None:
        wave = np.sin(self.rates * seconds + self.phases)
        current = frame[self.ys, self.xs, :3].astype(np.float32)
        if self.mode == "flash":  # a flare lights the surface it is on
            shown = np.maximum(
                current, self.values * (np.clip((wave - 0.55) * 2.2, 0, 1) ** 2)[:, None]
            )
        else:
            dim = 0.5 + 0.5 * wave if self.mode == "shine" else (wave < 0.0).astype(np.float32)
            shown = current - self.values * (self.depth * dim)[:, None]
        frame[self.ys, self.xs, :3] = np.clip(shown, 0, 255).astype(np.uint8)


_STAMP = 5
_PHASES = 4  # sub-pixel positions a speck is drawn at, each way


def _stamps() -> NDArray[np.float32]:
    """Soft 5x5 specks centred at each of _PHASES x _PHASES sub-pixel offsets."""
    grid = np.arange(_STAMP, dtype=np.float32) - _STAMP // 2
    stamps = np.empty((_PHASES, _PHASES, _STAMP, _STAMP), dtype=np.float32)
    for i in range(_PHASES):
        for j in range(_PHASES):
            dy, dx = grid[:, None] - i / _PHASES, grid[None, :] - j / _PHASES
            stamps[i, j] = np.exp(-(dx * dx + dy * dy) / 1.1)
    return stamps


@dataclass(frozen=True)
class Motes:
    """Soft specks drifting on seeded paths through the box (x0, y0, x1, y1), wrapping
    around it, each glowing on its own slow pulse."""

    box: tuple[int, int, int, int]
    start: NDArray[np.float32]
    """(n, 2): x, y."""
    velocity: NDArray[np.float32]
    sway: NDArray[np.float32]
    rates: NDArray[np.float32]
    phases: NDArray[np.float32]
    colour: NDArray[np.float32]
    pulse: float = 0.5

    @classmethod
    def seeded(
        cls,
        rng: np.random.Generator,
        box: tuple[int, int, int, int],
        count: int,
        colour: tuple[float, float, float],
        *,
        speed: float,
        pulse: float = 0.5,
    ) -> Motes:
        """`count` specks in `box`, wandering about `speed` pixels a second."""
        x0, y0, x1, y1 = box
        start = np.stack([rng.uniform(x0, x1, count), rng.uniform(y0, y1, count)], axis=1)
        angle = rng.uniform(0, 2 * math.pi, count)
        velocity = np.stack([np.cos(angle), np.sin(angle) * 0.5], axis=1) * speed
        return cls(
            box, start.astype(np.float32), velocity.astype(np.float32),
            sway=(rng.uniform(0.5, 1.5, count) * speed).astype(np.float32),
            rates=rng.uniform(0.6, 1.8, count).astype(np.float32),
            phases=rng.uniform(0, 2 * math.pi, count).astype(np.float32),
            colour=np.asarray(colour, dtype=np.float32), pulse=pulse,
        )  # fmt: skip

    rows = (0, 0)

    def apply(self, frame: Plate, seconds: float) -> None:
        x0, y0, x1, y1 = self.box
        wobble = np.sin(self.rates * seconds + self.phases) * self.sway
        x = self.start[:, 0] + self.velocity[:, 0] * seconds + wobble
        y = self.start[:, 1] + self.velocity[:, 1] * seconds + np.cos(self.rates * seconds) * 0.5
        x = x0 + np.mod(x - x0, max(1, x1 - x0 - _STAMP))
        y = y0 + np.mod(y - y0, max(1, y1 - y0 - _STAMP))
        ix, iy = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
        fx = ((x - ix) * _PHASES).astype(np.int64) % _PHASES
        fy = ((y - iy) * _PHASES).astype(np.int64) % _PHASES
        glow = 1.0 - self.pulse * (0.5 + 0.5 * np.sin(self.rates * 2.3 * seconds + self.phases))
        specks = _STAMPS[fy, fx][..., None] * (glow[:, None, None, None] * self.colour)
        specks = np.concatenate([specks, np.zeros((*specks.shape[:3], 1), np.float32)], axis=3)
        specks = np.clip(specks, 0, 255).astype(np.uint8)
        for speck, left, top in zip(specks, ix.tolist(), iy.tolist(), strict=True):
            spot = frame[top : top + _STAMP, left : left + _STAMP]
            if spot.shape == speck.shape:
                cv2.add(spot, speck, dst=spot)


_STAMPS = _stamps()
