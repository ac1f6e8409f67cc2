"""Timing: how long the video runs, where its cuts fall, and how each cut dissolves.

Shots share the video by weight (a beat's words, its emphasis) except where the prompt
states a length; every shot keeps a minimum. With music under the whole video, each cut
that lies near an onset of the music moves onto it and becomes a hard cut, so the picture
changes on the beat; the other cuts dissolve over half a second, shortened between short
shots so two dissolves never overlap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from r2v.protocol import FPS

MIN_SHOT_FRAMES = 8
"""The shortest a shot may be on screen: a third of a second."""
CROSSFADE_FRAMES = 12
"""Half a second of dissolve between shots, shortened when shots are short."""
SNAP_TOLERANCE = 0.3
"""Seconds a cut may move to land on an onset of the music."""


@dataclass(frozen=True)
class Span:
    """Where one shot sits: frames `start` to `end - 1`, the first `fade_in` of them
    dissolving from the previous shot (0: a hard cut, or the first shot)."""

    start: int
    end: int
    fade_in: int


def shortest_shot(frames: int, count: int) -> int:
    """The minimum frames on screen per shot when `count` shots share `frames`."""
    return max(1, min(MIN_SHOT_FRAMES, frames // max(1, count)))


def max_shots(frames: int) -> int:
    """How many shots `frames` frames can hold."""
    return max(1, frames // MIN_SHOT_FRAMES)


def cut_points(frames: int, weights: Sequence[float], stated: Sequence[float | None]) -> list[int]:
    """The frames where shots 2..n take over, so each shot's time on screen follows its
    weight, or its stated seconds when the prompt gives them."""
    count = len(weights)
    if count <= 1:
        return []
    least = shortest_shot(frames, count)
    lengths = np.asarray(weights, dtype=np.float64)
    fixed = np.array([s is not None for s in stated])
    if fixed.any():
        wanted = np.array([(s or 0.0) * FPS for s in stated])
        room = frames - least * int((~fixed).sum())
        if fixed.all() or wanted[fixed].sum() > room:
            scale = (frames if fixed.all() else room) / max(wanted[fixed].sum(), 1e-9)
            wanted = wanted * scale
        left = frames - wanted[fixed].sum()
        free = lengths[~fixed]
        lengths = wanted
        if (~fixed).any():
            lengths[~fixed] = free / free.sum() * left
    else:
        lengths = lengths / lengths.sum() * frames
    lengths = _with_minimum(lengths, float(least), frames)
    edges = np.round(np.cumsum(lengths)[:-1]).astype(np.int64)
    cuts: list[int] = []
    for position, edge in enumerate(edges):
        low = (cuts[-1] if cuts else 0) + least
        high = frames - least * (count - 1 - position)
        cuts.append(int(min(max(edge, low), high)))
    return cuts


def _with_minimum(lengths: np.ndarray, least: float, total: int) -> np.ndarray:
    """Raise lengths below `least` to it, taking the frames from the longer ones."""
    lengths = lengths.copy()
    held = np.zeros(len(lengths), dtype=bool)
    for _ in range(len(lengths)):
        short = (lengths < least - 1e-9) & ~held
        if not short.any():
            break
        held |= short
        lengths[held] = least
        free = ~held
        if not free.any():
            break
        lengths[free] = lengths[free] / lengths[free].sum() * (total - least * held.sum())
    return lengths


def snap_to_onsets(
    cuts: Sequence[int], onsets: Sequence[float], frames: int, least: int
) -> tuple[list[int], list[bool]]:
    """Move each cut onto the nearest onset (seconds) within `SNAP_TOLERANCE`, keeping every
    shot at least `least` frames; returns the cuts and which of them moved onto an onset."""
    reach = round(SNAP_TOLERANCE * FPS)
    targets = sorted({round(onset * FPS) for onset in onsets})
    result = list(cuts)
    snapped = [False] * len(cuts)
    for position, cut in enumerate(result):
        low = (result[position - 1] if position else 0) + least
        high = (result[position + 1] if position + 1 < len(result) else frames) - least
        near = [t for t in targets if abs(t - cut) <= reach and low <= t <= high]
        if near:
            result[position] = min(near, key=lambda t: (abs(t - cut), t))
            snapped[position] = True
    return result, snapped


def spans(cuts: Sequence[int], snapped: Sequence[bool], frames: int) -> list[Span]:
    """Each shot's frames: dissolves centred on the cuts, hard cuts where snapped."""
    edges = [0, *cuts, frames]
    shown = [b - a for a, b in zip(edges, edges[1:], strict=False)]
    fades = [0]
    for position in range(1, len(shown)):
        if snapped[position - 1]:
            fades.append(0)
        else:
            fade = min(CROSSFADE_FRAMES, shown[position - 1] // 3, shown[position] // 3)
            fades.append(max(0, fade))
    fades.append(0)
    result: list[Span] = []
    for position in range(len(shown)):
        start = edges[position] - fades[position] // 2
        following = fades[position + 1]
        end = frames if position == len(shown) - 1 else edges[position + 1] - following // 2
        result.append(Span(start, end + following, fades[position]))
    return result


def clamp_seconds(seconds: float, low: int, high: int) -> int:
    """Whole seconds within [low, high], rounded half up."""
    return int(min(max(math.floor(seconds + 0.5), low), high))
