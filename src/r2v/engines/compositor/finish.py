"""The finish of every shot: its colour grade and its weather, over whatever draws it.

A shot's source draws its picture (a plate through a camera, a clip, a drawn scene); the
finish then grades it and lays the weather over it, frame by frame, before dissolves mix
shots. A time of day, the weather's light and a look are one colour matrix a shot (see
`grades`), so a graded frame costs one `cv2.transform`; a drawn scene lights its own time
of day, so only its look is applied. The weather's layer is one more pass (see
`weather`); each kind is made once a render and shared by the shots it falls on, so the
same drops fall through a dissolve.

A pinned first or last frame is the picture itself, exactly (the next clip of a sequence
may start on it): the grade and the weather are faded in over the second after a pinned
first frame, and out over the second before a pinned last one.
"""

from __future__ import annotations

import cv2

from r2v.engines.compositor.grades import Grader, compose
from r2v.engines.compositor.phrases import Weather
from r2v.engines.compositor.shots import FrameSource, RGBFrame
from r2v.engines.compositor.storyboard import Shot, Storyboard
from r2v.engines.compositor.weather import WeatherLayer
from r2v.protocol import FPS

EASE_FRAMES = FPS
"""Frames over which the finish fades in after a pinned first frame (out before a last)."""


class Finish:
    """The grades and weather of one render's shots."""

    def __init__(self, board: Storyboard) -> None:
        self._board = board
        self._weather: dict[Weather, WeatherLayer] = {}

    def wrap(self, shot: Shot, source: FrameSource) -> FrameSource:
        """`source`, the frames of `shot`, graded and under its weather (as it is if the
        shot has neither)."""
        light, look = shot.grade.matrices(lit=shot.kind != "ambient")
        weather = self._layer(shot.weather) if shot.weather else None
        matrix = compose(light, weather.tone if weather else None, look)
        if matrix is None:
            return source
        return FinishedSource(source, Grader(matrix), weather, shot)

    def _layer(self, kind: Weather) -> WeatherLayer:
        if kind not in self._weather:
            self._weather[kind] = WeatherLayer(kind, self._board.seed, self._board.size)
        return self._weather[kind]


class FinishedSource:
    """A shot's frames through its colour grade, under its weather."""

    def __init__(
        self, source: FrameSource, grade: Grader, weather: WeatherLayer | None, shot: Shot
    ) -> None:
        self._source, self._grade, self._weather, self._shot = source, grade, weather, shot
        self._ease = max(1, min(EASE_FRAMES, shot.length // 2))

    def frame(self, index: int) -> RGBFrame:
        picture = self._source.frame(index)
        strength = self.strength(index)
        if strength <= 0.0:
            return picture  # a pinned frame: the picture itself
        graded = self._grade(picture)  # a new frame, this source's own
        if strength < 1.0:
            original = (
                picture if picture.shape[2] == 3 else cv2.cvtColor(picture, cv2.COLOR_RGBA2RGB)
            )
            cv2.addWeighted(original, 1.0 - strength, graded, strength, 0.0, dst=graded)
        if self._weather is None:
            return graded
        if strength < 1.0:
            layer = self._weather.layer(index)
            return cv2.addWeighted(graded, 1.0, layer, strength, 0.0, dst=graded)  # type: ignore[return-value]
        return self._weather.over(graded, index)

    def strength(self, index: int) -> float:
        """How much of the finish shows at output frame `index`: 0 on a pinned frame,
        rising to 1 over the second after it (falling over the second before a pinned
        last frame)."""
        shot, strength = self._shot, 1.0
        if "first" in shot.pins:
            strength = min(strength, (index - shot.start) / self._ease)
        if "last" in shot.pins:
            strength = min(strength, (shot.end - 1 - index) / self._ease)
        return max(0.0, strength)

    def close(self) -> None:
        self._source.close()
