"""What a scene drawn from the words shows: the place they name, in the light of their hour.

A prompt with no picture is drawn: the place it names (`phrases.PLACES`: a sea, mountains,
a city, a forest, a desert, a snowfield, space, a field) under the sky of its time of day
(`phrases.TIMES_OF_DAY`). Each drawn shot reads its own sentences first and the whole
prompt after, so in "A sea at dawn. The sun climbs." both shots show the sea at dawn. A
time the words leave open is drawn from the seed among the kind ones (morning, golden
hour, dusk); a prompt that names no place at all gets `ambient`'s abstract scene in its
colours instead, as the storyboard summary warns.

Everything here is decided before drawing (the storyboard keeps it on the shot); the
lights are the colours the painters in `skies`, `terrain` and `painter` draw with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from r2v.engines.compositor import phrases
from r2v.engines.compositor.phrases import Place, TimeOfDay

RGB = tuple[float, float, float]
"""A colour, each channel 0-255."""
FloatArray = NDArray[np.floating[Any]]
"""Arrays of colours, coordinates and shares, float32 or float64."""

UNNAMED_TIMES: Final[tuple[TimeOfDay, ...]] = ("morning", "golden_hour", "dusk")
"""The times a scene is drawn in when its words name none."""
PLACE_NAMES: Final[dict[Place, str]] = {
    "sea": "a sea", "mountains": "mountains", "city": "a city skyline", "forest": "a forest",
    "desert": "a desert", "snowfield": "a snowfield", "space": "outer space", "field": "a field",
}  # fmt: skip
ABSTRACT_INSTEAD: Final = (
    "no place that can be drawn was named (a sea, mountains, a city, a forest, a desert, "
    "a snowfield, space, a field): an abstract scene was drawn in its stead"
)
"""The warning for words that name no place."""
TIME_NAMES: Final[dict[TimeOfDay, str]] = {
    "dawn": "at dawn", "morning": "in the morning", "noon": "at noon",
    "golden_hour": "at golden hour", "dusk": "at dusk", "night": "at night",
}  # fmt: skip


@dataclass(frozen=True)
class Light:
    """How a time of day lights a scene.

    The sky is a gradient through `sky` stops (a share of the way from the top of the frame
    down to the horizon, and a colour); the sun (the moon at night) stands `elevation` of
    the sky's height above the horizon (below it when negative) with a disc of `radius`
    (a share of the frame's smaller side) and a glow around it. The land is its own colour times
    `tint`, fading into `haze` with distance, as the air between does.
    """

    sky: tuple[tuple[float, RGB], ...]
    sun: RGB
    glow: RGB
    glow_strength: float
    elevation: float
    radius: float
    tint: RGB
    haze: RGB
    water: RGB
    """Deep water, seen from above: the sea near the viewer."""
    clouds: RGB
    cloud_cover: float
    """The share of the sky clouds cover, about."""
    night: bool = False
    """A moon instead of the sun, stars, and lit windows."""

    def sky_at(self, share: FloatArray) -> FloatArray:
        """The sky's colour (N x 3, float 0-255) at each `share` of the way to the horizon."""
        stops = np.array([s for s, _ in self.sky], dtype=np.float32)
        colours = np.array([c for _, c in self.sky], dtype=np.float32)
        return np.stack([np.interp(share, stops, colours[:, c]) for c in range(3)], axis=-1)


LIGHTS: Final[dict[TimeOfDay, Light]] = {
    "dawn": Light(
        sky=((0.0, (150, 118, 160)), (0.35, (214, 148, 160)), (0.7, (248, 182, 150)),
             (1.0, (255, 218, 176))),
        sun=(255, 240, 214), glow=(255, 170, 120), glow_strength=0.7, elevation=0.07,
        radius=0.045, tint=(0.82, 0.7, 0.85), haze=(236, 186, 176),
        water=(46, 70, 120), clouds=(255, 196, 190), cloud_cover=0.35,
    ),
    "morning": Light(
        sky=((0.0, (66, 128, 210)), (0.5, (122, 178, 232)), (1.0, (206, 228, 244))),
        sun=(255, 252, 238), glow=(255, 246, 220), glow_strength=0.45, elevation=0.55,
        radius=0.035, tint=(0.95, 1.0, 1.0), haze=(196, 216, 236),
        water=(28, 92, 150), clouds=(255, 255, 255), cloud_cover=0.3,
    ),
    "noon": Light(
        sky=((0.0, (34, 96, 196)), (0.55, (74, 146, 228)), (1.0, (176, 210, 240))),
        sun=(255, 255, 250), glow=(255, 255, 240), glow_strength=0.5, elevation=0.78,
        radius=0.032, tint=(1.08, 1.05, 1.0), haze=(186, 212, 238),
        water=(16, 86, 160), clouds=(255, 255, 255), cloud_cover=0.22,
    ),
    "golden_hour": Light(
        sky=((0.0, (84, 116, 176)), (0.45, (196, 170, 160)), (0.8, (250, 196, 120)),
             (1.0, (255, 218, 150))),
        sun=(255, 236, 180), glow=(255, 186, 90), glow_strength=0.8, elevation=0.16,
        radius=0.045, tint=(1.1, 0.86, 0.62), haze=(240, 196, 140),
        water=(50, 74, 112), clouds=(255, 214, 160), cloud_cover=0.3,
    ),
    "dusk": Light(
        sky=((0.0, (24, 30, 84)), (0.45, (96, 62, 128)), (0.78, (224, 110, 100)),
             (1.0, (255, 162, 94))),
        sun=(255, 200, 140), glow=(255, 120, 70), glow_strength=0.8, elevation=0.02,
        radius=0.05, tint=(0.5, 0.36, 0.52), haze=(196, 110, 116),
        water=(36, 40, 88), clouds=(255, 136, 120), cloud_cover=0.35,
    ),
    "night": Light(
        sky=((0.0, (4, 6, 20)), (0.55, (10, 18, 46)), (1.0, (26, 42, 82))),
        sun=(236, 240, 250), glow=(150, 170, 220), glow_strength=0.35, elevation=0.62,
        radius=0.03, tint=(0.16, 0.2, 0.34), haze=(30, 44, 82),
        water=(6, 12, 32), clouds=(44, 54, 86), cloud_cover=0.2, night=True,
    ),
}  # fmt: skip
SPACE_LIGHT: Final = LIGHTS["night"]
"""Space has no hour: its stars are the night's."""


@dataclass(frozen=True)
class ScenePlan:
    """A drawn shot: the place, the time of day (None in space), and the seed of its draws."""

    place: Place
    time: TimeOfDay | None
    seed: int
    overcast: bool = False
    """Rain, snow or fog was asked for: the sun or moon hides behind a heavy cloud cover."""

    @property
    def light(self) -> Light:
        """The light the scene is drawn in."""
        return SPACE_LIGHT if self.time is None else LIGHTS[self.time]

    def describe(self) -> str:
        """The scene in words: "a sea at dawn", "outer space"."""
        if self.time is None:
            return PLACE_NAMES[self.place]
        return f"{PLACE_NAMES[self.place]} {TIME_NAMES[self.time]}"


def shown_by(scene: ScenePlan | None) -> str:
    """What a drawn shot shows, as the storyboard summary says it: "the words: a sea at
    dawn", or "the words: an abstract scene"."""
    return f"the words: {scene.describe() if scene is not None else 'an abstract scene'}"


def place_of(words: str, prompt: str) -> Place | None:
    """The place `words` name, else the one the whole `prompt` names, else None."""
    return phrases.first_named(phrases.PLACES, words) or phrases.first_named(phrases.PLACES, prompt)


def plan_scene(words: str, prompt: str, rng: np.random.Generator) -> ScenePlan | None:
    """The scene a shot read from `words` shows (None: the abstract scene). Draws from `rng`
    the same number of times whatever the words say, so one shot's words never change the
    next shot's draws."""
    seed = int(rng.integers(2**62))
    unnamed = UNNAMED_TIMES[int(rng.integers(len(UNNAMED_TIMES)))]
    place = place_of(words, prompt)
    if place is None:
        return None
    if place == "space":
        return ScenePlan(place, None, seed)
    table = phrases.TIMES_OF_DAY
    time = phrases.first_named(table, words) or phrases.first_named(table, prompt)
    if time is None and phrases.first_named(phrases.LOOKS, prompt) == "neon":
        time = "night"  # neon signs are lit after dark
    overcast = phrases.first_named(phrases.WEATHER, prompt) is not None
    return ScenePlan(place, time or unnamed, seed, overcast)
