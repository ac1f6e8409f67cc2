"""Timing: how long the video runs, where its cuts fall, and how each cut dissolves.

Shots share the video by weight (a beat's words, its emphasis) except where the prompt
states a length or a clip has one of its own (its frames at its own speed); every shot
keeps a minimum. With music under the whole video, each cut that lies near an onset of the
music moves onto it and becomes a hard cut, so the picture changes on the beat (never
lengthening a clip's shot past its clip); the other cuts dissolve over half a second,
shortened between short shots so two dissolves never overlap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from r2v.protocol import FPS

MIN_SHOT_FRAMES = 8
"""The shortest a shot may be on screen: a third of a second."""
CROSSFADE_FRAMES = 12
"""Half a second of dissolve between shots, shortened when shots are short."""
SNAP_TOLERANCE = 0.3
"""Seconds a cut may move to land on an onset of the music."""
GIVE_WAY_FRAMES = FPS
"""The least a shot without a length of its own (an image) keeps when clips want the
time: a second, long enough to be seen."""


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


def cut_points(
    frames: int,
    weights: Sequence[float],
    stated: Sequence[float | None],
    natural: Sequence[int | None] | None = None,
) -> list[int]:
    """The frames where shots 2..n take over, so each shot's time on screen follows its
    weight, or its stated seconds when the prompt gives them.

    A shot with a `natural` length (a clip's frames at its own speed) gets that long on
    screen, its dissolves included, where the video has room: the shots that only have a
    weight (images) give way to it, down to `GIVE_WAY_FRAMES` each. Clips that together
    want more than that are shortened in proportion; clips that cannot fill the video
    alone are lengthened in proportion. Stated lengths and the video's length come first.
    """
    count = len(weights)
    if count <= 1:
        return []
    least = shortest_shot(frames, count)
    lengths = _shares(frames, weights, stated, natural or [None] * count, least)
    lengths = _with_minimum(lengths, float(least), frames)
    edges = np.cumsum(_whole(lengths, frames))[:-1]
    cuts: list[int] = []
    for position, edge in enumerate(edges):
        low = (cuts[-1] if cuts else 0) + least
        high = frames - least * (count - 1 - position)
        cuts.append(int(min(max(edge, low), high)))
    return cuts


def clip_lengths(natural: Sequence[int | None]) -> list[int | None]:
    """The frames from cut to cut that let each clip's shot, dissolves included, last its
    `natural` frames: a dissolve reaches half its length past the cut on either side."""
    count = len(natural)
    reach_in, reach_out = CROSSFADE_FRAMES // 2, CROSSFADE_FRAMES - CROSSFADE_FRAMES // 2
    return [
        None
        if frames is None
        else max(1, frames - (reach_in if n > 0 else 0) - (reach_out if n < count - 1 else 0))
        for n, frames in enumerate(natural)
    ]


def _shares(
    frames: int,
    weights: Sequence[float],
    stated: Sequence[float | None],
    natural: Sequence[int | None],
    least: int,
) -> np.ndarray:
    """Each shot's frames from cut to cut, before the minimum and whole frames."""
    lengths = np.asarray(weights, dtype=np.float64).copy()
    fixed = np.array([s is not None for s in stated])
    left = float(frames)
    if fixed.any():
        wanted = np.array([(s or 0.0) * FPS for s in stated])
        room = frames - least * int((~fixed).sum())
        if fixed.all() or wanted[fixed].sum() > room:
            scale = (frames if fixed.all() else room) / max(wanted[fixed].sum(), 1e-9)
            wanted = wanted * scale
        lengths[fixed] = wanted[fixed]
        left -= wanted[fixed].sum()
    clip = np.array([n is not None for n in clip_lengths(natural)]) & ~fixed
    other = ~fixed & ~clip
    give_way = 0.0
    if clip.any():
        want = np.array([n or 0 for n in clip_lengths(natural)], dtype=np.float64)[clip]
        take = left
        if other.any():
            give_way = min(float(GIVE_WAY_FRAMES), left / int((~fixed).sum()))
            take = min(want.sum(), left - give_way * int(other.sum()))
        lengths[clip] = want * take / want.sum()
        left -= take
    if other.any():
        shares = lengths[other] / lengths[other].sum() * left
        lengths[other] = _with_minimum(shares, give_way, left)
    return lengths


def _with_minimum(lengths: np.ndarray, least: float, total: float) -> np.ndarray:
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


def _whole(lengths: np.ndarray, total: int) -> NDArray[np.int64]:
    """Lengths in whole frames that add up to `total`: each rounded down, and the frames
    left over given to the largest remainders (earlier first). A length that is already
    whole (a clip's) stays exactly as it is."""
    lengths = np.round(lengths, 6)
    whole: NDArray[np.int64] = np.floor(lengths).astype(np.int64)
    spare = total - int(whole.sum())
    if spare > 0:
        order = np.argsort(-(lengths - whole), kind="stable")
        whole[order[:spare]] += 1
    return whole


def snap_to_onsets(
    cuts: Sequence[int],
    onsets: Sequence[float],
    frames: int,
    least: int,
    natural: Sequence[int | None] | None = None,
) -> tuple[list[int], list[bool]]:
    """Move each cut onto the nearest onset (seconds) within `SNAP_TOLERANCE`, keeping every
    shot at least `least` frames and no clip's shot longer than its `natural` frames allow
    (unless it already was: a clip that must be slowed anyway); returns the cuts and which
    of them moved onto an onset."""
    reach = round(SNAP_TOLERANCE * FPS)
    targets = sorted({round(onset * FPS) for onset in onsets})
    result = list(cuts)
    snapped = [False] * len(cuts)
    longest = clip_lengths(natural or [None] * (len(cuts) + 1))
    for position, cut in enumerate(result):
        low = (result[position - 1] if position else 0) + least
        high = (result[position + 1] if position + 1 < len(result) else frames) - least
        if longest[position] is not None:
            before = result[position - 1] if position else 0
            high = min(high, max(cut, before + (longest[position] or 0)))
        if longest[position + 1] is not None:
            after = result[position + 1] if position + 1 < len(result) else frames
            low = max(low, min(cut, after - (longest[position + 1] or 0)))
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
