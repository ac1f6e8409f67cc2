"""The finish of every shot: its colour grade and its weather, over whatever draws it.

A shot's source draws its picture (a plate through a camera, a clip, a drawn scene); the
finish then grades it and lays the weather over it, frame by frame, before dissolves mix
shots. A time of day, the weather's light and a look are one colour matrix a shot (see
`grades`), so a graded frame costs one `cv2.transform`; a drawn scene lights its own time
of day, so only its look is applied. The weather's layer is one more pass (see
`weather`); each kind is made once a render and shared by the shots it falls on, so the
same drops fall through a dissolve.
"""

from __future__ import annotations

from r2v.engines.compositor.grades import Grader, compose
from r2v.engines.compositor.phrases import Weather
from r2v.engines.compositor.shots import FrameSource, RGBFrame
from r2v.engines.compositor.storyboard import Shot, Storyboard
from r2v.engines.compositor.weather import WeatherLayer


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
        return FinishedSource(source, Grader(matrix), weather)

    def _layer(self, kind: Weather) -> WeatherLayer:
        if kind not in self._weather:
            self._weather[kind] = WeatherLayer(kind, self._board.seed, self._board.size)
        return self._weather[kind]


class FinishedSource:
    """A shot's frames through its colour grade, under its weather."""

    def __init__(self, source: FrameSource, grade: Grader, weather: WeatherLayer | None) -> None:
        self._source, self._grade, self._weather = source, grade, weather

    def frame(self, index: int) -> RGBFrame:
        graded = self._grade(self._source.frame(index))  # a new frame, this source's own
        return graded if self._weather is None else self._weather.over(graded, index)

    def close(self) -> None:
        self._source.close()
