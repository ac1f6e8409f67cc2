"""How a reference video plays in its shot: at its own speed wherever it can.

A clip plays as filmed, at exactly 1x: the storyboard gives its shot the clip's own length
where the video's length allows (`natural_frames`), and a clip longer than its shot is
trimmed, from its end, or from its start when it closes the video, so that the video ends
on the clip's last frame. Its speed changes only when the prompt asks for it ("slow
motion", "speed up", "time-lapse", "慢动作", "快进", "延时") or when the clip is too short
for the shot it must fill (a 3 s clip alone in a 4 s video): it is then slowed just enough
to fill it, but never below `MIN_SPEED`, beyond which its last frame holds. A retimed
clip's frames are blended from the two around each moment and its sound is time-stretched
with its pitch kept (`stretch`), so that neither stutters nor sounds like slowed tape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from r2v.engines.compositor.phrases import Pace
from r2v.protocol import FPS

PACE_SPEEDS: Final[dict[Pace, float]] = {"slow_motion": 0.5, "speed_up": 2.0, "time_lapse": 4.0}
"""Source seconds per output second for each pace a prompt may ask for."""
MIN_SPEED = 0.5
"""The slowest a clip plays to fill its shot: slower, blended frames turn to mush and the
stretched sound smears."""


@dataclass(frozen=True)
class Playback:
    """How one clip plays over a shot of a given length (how much of it shows, and how long
    its last frame holds, follow from these and the clip's length)."""

    start: float
    """The source second shown on the shot's first frame."""
    speed: float
    """Source seconds per output second."""


def asked_speed(pace: Pace | None) -> float:
    """The speed the prompt asks of a clip: 1 unless it names a pace."""
    return PACE_SPEEDS[pace] if pace is not None else 1.0


def natural_frames(clip_seconds: float, pace: Pace | None, emphasis: float = 1.0) -> int:
    """The frames a shot needs to show a whole clip at the speed asked; a clip shown only
    "briefly" (`emphasis` below 1) needs that share of them.

    Rounded down, so that the shot never outlasts the clip by a fraction of a frame.
    """
    seconds = clip_seconds / asked_speed(pace) * min(emphasis, 1.0)
    return max(1, math.floor(seconds * FPS + 1e-6))


def plan_playback(
    clip_seconds: float, frames: int, pace: Pace | None, *, closes: bool = False
) -> Playback:
    """How a `clip_seconds` clip plays over a shot of `frames` frames: at the speed asked
    and trimmed when it is long enough, else slowed to fill the shot (down to `MIN_SPEED`,
    then holding its last frame). A clip that `closes` the video is trimmed from its start."""
    seconds = frames / FPS
    if clip_seconds <= 0 or seconds <= 0:
        return Playback(0.0, 1.0)
    speed = asked_speed(pace)
    if clip_seconds < seconds * speed - 1e-9:
        speed = max(clip_seconds / seconds, min(MIN_SPEED, speed))
    shown = min(clip_seconds, seconds * speed)
    return Playback(clip_seconds - shown if closes else 0.0, speed)
