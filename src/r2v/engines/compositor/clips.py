"""Shaping one audio clip for the mix: loop or trim to a length, fade, duck.

Everything works on float32 arrays shaped (channels, samples) at one rate and returns new
arrays; retiming one is `stretch`'s job, placing the shaped clips on the timeline and
mixing them `sound`'s.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Audio = NDArray[np.float32]

LOOP_CROSSFADE = 0.05
"""Seconds each loop seam crossfades over, so a looped clip never clicks."""


def fit_length(track: Audio, length: int, *, loop: bool, rate: int = 48000) -> Audio:
    """`track` cut to `length` samples; when shorter, looped with crossfaded seams (`loop`)
    or followed by silence."""
    size = track.shape[1]
    if size >= length:
        return np.ascontiguousarray(track[:, :length])
    out = np.zeros((track.shape[0], length), dtype=np.float32)
    if not loop or size == 0:
        out[:, :size] = track
        return out
    overlap = min(round(LOOP_CROSSFADE * rate), size // 4)
    ramp = np.linspace(0.0, 1.0, overlap, dtype=np.float32) if overlap else None
    position, first = 0, True
    while position < length:
        piece = track.copy()
        if ramp is not None:
            if not first:
                piece[:, :overlap] *= ramp
            piece[:, size - overlap :] *= ramp[::-1]
        take = min(size, length - position)
        out[:, position : position + take] += piece[:, :take]
        position += size - overlap
        first = False
    return out


def fade(track: Audio, fade_in: float, fade_out: float, rate: int = 48000) -> Audio:
    """Linear fade-in and fade-out (seconds), each at most a quarter of the track."""
    size = track.shape[1]
    out = track.copy()
    rise = min(round(fade_in * rate), size // 4)
    fall = min(round(fade_out * rate), size // 4)
    if rise:
        out[:, :rise] *= np.linspace(0.0, 1.0, rise, dtype=np.float32)
    if fall:
        out[:, size - fall :] *= np.linspace(1.0, 0.0, fall, dtype=np.float32)
    return out


def audible(track: Audio, floor: float = 1e-4) -> bool:
    """Whether `track` has any sample above `floor` (about -80 dBFS)."""
    return track.size > 0 and float(np.max(np.abs(track))) > floor


def envelope(length: int, spans: list[tuple[int, int]], level: float, ramp: int) -> Audio:
    """A gain curve of `length` samples: 1, dipping to `level` over each of `spans`
    (sample ranges) with linear ramps of `ramp` samples on either side."""
    curve = np.ones(length, dtype=np.float32)
    steps = np.arange(1, ramp + 1)
    values = (level + (1.0 - level) * steps / (ramp + 1)).astype(np.float32)
    for start, end in spans:
        start, end = max(0, start), min(length, end)
        if end <= start:
            continue
        curve[start:end] = np.minimum(curve[start:end], level)
        for where in (start - steps, end - 1 + steps):
            keep = (where >= 0) & (where < length)
            curve[where[keep]] = np.minimum(curve[where[keep]], values[keep])
    return curve[None, :]
