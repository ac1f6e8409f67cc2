"""Colour grades: the light of a time of day and the look a prompt asks for.

Every grade is one affine colour transform, a matrix over (R, G, B, 1): saturation,
exposure, contrast, channel mixing and gains and a lift of the blacks are all linear, so a
time of day, the weather's light and a look compose into a single matrix, and a frame is
graded by one `cv2.transform` (its 8-bit three-channel path costs about a quarter of a
millisecond at 720p, a sixth of a per-channel lookup table). Its arithmetic saturates at
black and white, which is where a dark grade crushes its shadows and a contrasty one
clips.

The recipes are written in units of full scale (0-1) and applied in that order: night
is dark, blue and nearly colourless; dawn soft and pink-orange; golden hour warm, its
shadows lifted into a glow; dusk orange and magenta; noon bright and contrasty; morning
fresh and a little cool. Black and white leaves every channel equal; vintage fades the
colours and lifts the blacks into a warm haze; neon saturates, with cyan shadows and
magenta highlights; warm and cold shift the balance.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

import cv2
import numpy as np
from numpy.typing import NDArray

from r2v.engines.compositor.phrases import (
    LOOKS,
    TIMES_OF_DAY,
    Look,
    TimeOfDay,
    first_named,
)

Matrix = NDArray[np.float64]
"""A 4x4 affine colour transform over (R, G, B, 1), in units of full scale."""
Frame = NDArray[np.uint8]

_LUMA = np.array([0.299, 0.587, 0.114])
"""BT.601 luma weights: grey is what the encoder's Y channel sees."""


def recipe(
    *,
    saturation: float = 1.0,
    exposure: float = 1.0,
    contrast: float = 1.0,
    gains: tuple[float, float, float] = (1.0, 1.0, 1.0),
    lift: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> Matrix:
    """x -> lift + gains * (contrast * (exposure * saturated(x) - 0.5) + 0.5), as a matrix.

    `saturation` mixes each pixel with its own grey (0: grey, above 1: more colourful);
    `contrast` pivots on mid-grey; `lift` is added last, so it colours the blacks.
    """
    saturate = np.eye(4)
    saturate[:3, :3] = saturation * np.eye(3) + (1.0 - saturation) * np.outer(np.ones(3), _LUMA)
    tone = np.eye(4)
    tone[:3, :3] *= contrast * exposure
    tone[:3, 3] = 0.5 * (1.0 - contrast)
    balance = np.diag([*gains, 1.0])
    balance[:3, 3] = lift
    return balance @ tone @ saturate


def mixed(rows: tuple[tuple[float, float, float], ...]) -> Matrix:
    """A matrix that makes each channel of a sum of all three, weighted by its row."""
    matrix = np.eye(4)
    matrix[:3, :3] = rows
    return matrix


TIME_RECIPES: dict[TimeOfDay, Matrix] = {
    "night": recipe(saturation=0.35, exposure=0.62, contrast=1.1, gains=(0.62, 0.8, 1.12),
                    lift=(0.0, 0.01, 0.04)),
    "dawn": recipe(saturation=0.85, contrast=0.88, gains=(1.08, 0.95, 0.92),
                   lift=(0.07, 0.035, 0.045)),
    "golden_hour": recipe(saturation=1.15, exposure=1.06, gains=(1.12, 0.97, 0.68),
                          lift=(0.07, 0.035, 0.0)),
    "dusk": recipe(saturation=1.05, exposure=0.82, gains=(1.14, 0.8, 0.86),
                   lift=(0.05, 0.005, 0.035)),
    "noon": recipe(saturation=1.1, exposure=1.08, contrast=1.22, gains=(1.02, 1.0, 0.97)),
    "morning": recipe(saturation=1.04, exposure=1.04, contrast=0.97, gains=(0.96, 1.0, 1.05),
                      lift=(0.0, 0.01, 0.025)),
}  # fmt: skip
LOOK_RECIPES: dict[Look, Matrix] = {
    "black_and_white": recipe(saturation=0.0, contrast=1.08),
    "vintage": recipe(saturation=0.68, contrast=0.78, gains=(1.03, 0.98, 0.84),
                      lift=(0.1, 0.08, 0.05)),
    # Red and green each carry some blue, and green some of blue's: reds turn magenta,
    # greens cyan, whites pink, shadows a deep blue-cyan.
    "neon": recipe(saturation=1.3, contrast=1.1, lift=(-0.08, 0.03, 0.05))
    @ mixed(((1.12, 0.0, 0.1), (0.0, 0.8, 0.2), (0.4, 0.45, 0.6))),
    "warm": recipe(gains=(1.08, 1.0, 0.86), lift=(0.02, 0.01, 0.0)),
    "cold": recipe(gains=(0.86, 0.98, 1.1), lift=(0.0, 0.01, 0.03)),
}  # fmt: skip


@dataclass(frozen=True)
class Grade:
    """The light a shot is graded with: a time of day, a look, either, or both."""

    time: TimeOfDay | None = None
    look: Look | None = None

    @property
    def name(self) -> str | None:
        """How the storyboard names it: `night`, `black_and_white night`; None for no grade."""
        return " ".join(part for part in (self.look, self.time) if part) or None

    def over(self, base: Grade) -> Grade:
        """This grade, taking from `base` (the whole video's) what it leaves unsaid."""
        return Grade(self.time or base.time, self.look or base.look)

    def matrices(self, *, lit: bool = True) -> tuple[Matrix | None, Matrix | None]:
        """The time of day's matrix (None when `lit` is false: a drawn scene lights itself)
        and the look's, each None when not asked for."""
        time = TIME_RECIPES[self.time] if self.time and lit else None
        return time, LOOK_RECIPES[self.look] if self.look else None


def read_grade(text: str) -> Grade:
    """The time of day and the look that `text` names first."""
    return Grade(first_named(TIMES_OF_DAY, text), first_named(LOOKS, text))


def compose(*steps: Matrix | None) -> Matrix | None:
    """The matrix applying `steps` in order (None ones skipped); None if all are None."""
    present = [step for step in steps if step is not None]
    if not present:
        return None
    return reduce(lambda done, step: step @ done, present[1:], present[0])


class Grader:
    """Grades frames through one matrix.

    A frame is handed on as a new array (the encoder may still hold the last one); the
    RGB copy of an RGBA frame is made in a buffer kept between frames, since a fresh
    buffer of a frame's size is fresh memory, whose first touch costs more than the
    grade itself.
    """

    def __init__(self, matrix: Matrix) -> None:
        self._affine = matrix[:3].copy()
        self._affine[:, 3] *= 255.0  # offsets in 8-bit levels
        self._rgb: Frame | None = None

    def __call__(self, frame: Frame) -> Frame:
        """`frame` (RGB or RGBA) graded, as a new RGB frame."""
        if frame.shape[2] == 4:
            if self._rgb is None or self._rgb.shape[:2] != frame.shape[:2]:
                self._rgb = np.empty((*frame.shape[:2], 3), dtype=np.uint8)
            frame = cv2.cvtColor(frame, cv2.COLOR_RGBA2RGB, dst=self._rgb)  # type: ignore[assignment]
        return cv2.transform(frame, self._affine)  # type: ignore[return-value]
