"""The abstract scene: drawn for words that name no place to draw (see `scenery`).

A slowly turning two-colour gradient with soft coloured light blobs drifting over it on
Lissajous paths, in the prompt's mood: the palette comes from the seed, nudged toward any
colour the prompt names ("sunset", "ocean", "红", ...). Each frame is computed at an
eighth of the output size with numpy and enlarged with one `cv2.resize`: soft shapes lose
nothing at low resolution, and the cost per frame stays far below the encoder's.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from r2v.engines.compositor.storyboard import STREAM_AMBIENT

_SCALE = 8
_BLOBS = 5

# Hues (0-1) of colour words a prompt may use, in English and Chinese.
_HUES: dict[str, float] = {
    "red": 0.0, "红": 0.0, "fire": 0.03, "火": 0.03, "sunset": 0.06, "日落": 0.06,
    "orange": 0.08, "橙": 0.08, "gold": 0.12, "金": 0.12, "yellow": 0.15, "黄": 0.15,
    "green": 0.33, "绿": 0.33, "forest": 0.3, "森林": 0.3, "teal": 0.47,
    "ocean": 0.55, "sea": 0.55, "海": 0.55, "sky": 0.57, "天空": 0.57, "blue": 0.62,
    "蓝": 0.62, "night": 0.66, "夜": 0.66, "purple": 0.78, "紫": 0.78, "pink": 0.92,
    "粉": 0.92,
}  # fmt: skip


@dataclass(frozen=True)
class AmbientScene:
    """Everything needed to draw one ambient shot at any time, derived from seed and prompt."""

    top: tuple[float, float, float]
    bottom: tuple[float, float, float]
    colours: tuple[tuple[float, float, float], ...]
    centres: tuple[tuple[float, float], ...]
    orbits: tuple[tuple[float, float, float, float], ...]
    """Per blob: x and y amplitude, x and y angular speed (radians per second)."""
    radii: tuple[float, ...]
    turn: float
    """Radians per second the background gradient turns."""


def prompt_hue(prompt: str) -> float | None:
    """The hue of the first colour word in the prompt, or None."""
    lowered = prompt.lower()
    found = [(lowered.find(word), hue) for word, hue in _HUES.items() if word in lowered]
    return min(found)[1] if found else None


def make_scene(prompt: str, seed: int, variation: int) -> AmbientScene:
    """The scene of ambient shot `variation` for this prompt and seed."""
    # sha256, not hash(): Python salts str hashes per process, which would break determinism.
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    rng = np.random.default_rng(
        [seed, STREAM_AMBIENT, int.from_bytes(digest[:8], "little"), variation]
    )
    named = prompt_hue(prompt)
    base = float(rng.random()) if named is None else named + float(rng.uniform(-0.04, 0.04))
    base = (base + 0.06 * variation) % 1.0  # later shots shift hue a little, same family

    def colour(hue: float, saturation: float, value: float) -> tuple[float, float, float]:
        r, g, b = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
        return (r, g, b)

    top = colour(base, 0.55, 0.35)
    bottom = colour(base + float(rng.uniform(0.08, 0.2)), 0.7, 0.12)
    colours = tuple(
        colour(base + float(rng.uniform(-0.18, 0.18)), float(rng.uniform(0.45, 0.85)),
               float(rng.uniform(0.7, 1.0)))
        for _ in range(_BLOBS)
    )  # fmt: skip
    centres = tuple((float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.2, 0.8))) for _ in colours)
    orbits = tuple(
        (float(rng.uniform(0.05, 0.2)), float(rng.uniform(0.05, 0.2)),
         float(rng.uniform(0.2, 0.7)), float(rng.uniform(0.2, 0.7)))
        for _ in colours
    )  # fmt: skip
    radii = tuple(float(rng.uniform(0.12, 0.3)) for _ in colours)
    return AmbientScene(top, bottom, colours, centres, orbits, radii, float(rng.uniform(-0.3, 0.3)))


class AmbientRenderer:
    """Draws an `AmbientScene` at a given size; keeps the low-resolution grids between frames."""

    def __init__(self, scene: AmbientScene, size: tuple[int, int], *, flags: int) -> None:
        self.scene, self.size, self.flags = scene, size, flags
        width, height = max(8, size[0] // _SCALE), max(8, size[1] // _SCALE)
        aspect = size[0] / size[1]
        # Coordinates in units of the frame's height, centred, so blobs stay round.
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        self._x = (xs + 0.5) / height
        self._y = (ys + 0.5) / height
        self._aspect = aspect
        self._top = np.asarray(scene.top, dtype=np.float32)
        self._bottom = np.asarray(scene.bottom, dtype=np.float32)

    def frame(self, seconds: float) -> NDArray[np.uint8]:
        """The scene at `seconds` into its shot, as an RGB frame of the renderer's size."""
        scene = self.scene
        angle = scene.turn * seconds + math.pi / 2
        ramp = (self._x - self._aspect / 2) * math.cos(angle) + (self._y - 0.5) * math.sin(angle)
        ramp = np.clip(ramp + 0.5, 0.0, 1.0)[..., None]
        image = self._top * (1 - ramp) + self._bottom * ramp
        for colour, (cx, cy), (ax, ay, wx, wy), radius in zip(
            scene.colours, scene.centres, scene.orbits, scene.radii, strict=True
        ):
            x = (cx + ax * math.sin(wx * seconds + cy * 6)) * self._aspect
            y = cy + ay * math.cos(wy * seconds + cx * 6)
            weight = np.exp(-((self._x - x) ** 2 + (self._y - y) ** 2) / (radius * radius))
            image += weight[..., None] * (np.asarray(colour, dtype=np.float32) * 0.55)
        small = np.clip(image * 255.0, 0, 255).astype(np.uint8)
        frame: NDArray[np.uint8] = cv2.resize(small, self.size, interpolation=self.flags)
        return frame
