"""The synthesized score: a seeded chord pad for videos with no sound of their own to use.

Key, mode, progression and the voices' detuning come from the seed; the chords change on
the video's cuts (long shots get extra changes so the harmony keeps moving), each chord
crossfading into the next. Phases come from absolute time, so a held note never clicks at
a seam.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

SYNTH_RATE = 12000
"""The rate the pad is computed at: its highest partial is under 1.5 kHz."""

# Chord roots (semitones above the key) and whether each chord is minor.
_MAJOR_PROGRESSION = ((0, False), (9, True), (5, False), (7, False))
_MINOR_PROGRESSION = ((0, True), (8, False), (3, False), (10, False))
_HARMONICS = ((1.0, 1.0), (2.0, 0.3), (3.0, 0.1))
_CHORD_CROSSFADE = 0.3
_LONGEST_CHORD = 4.0


def synth_pad(
    rng: np.random.Generator, length: int, changes: list[int], rate: int = 48000, channels: int = 2
) -> NDArray[np.float32]:
    """`length` samples of a soft chord pad at `rate`, changing chord at `changes` (samples).

    Computed at `SYNTH_RATE` and linearly interpolated up: a quarter of the sines at 48 kHz,
    with interpolation images below -50 dB.
    """
    key = 45 + int(rng.integers(0, 8))  # A2 to E3
    progression = _MINOR_PROGRESSION if rng.random() < 0.5 else _MAJOR_PROGRESSION
    offset = int(rng.integers(0, len(progression)))
    detune = float(rng.uniform(0.0015, 0.003))
    wobble = float(rng.uniform(0.1, 0.3))
    step = rate / SYNTH_RATE
    short = math.ceil(length / step) + 2
    bounds = _segments(short, [round(change / step) for change in changes])
    xfade = round(_CHORD_CROSSFADE * SYNTH_RATE)
    low = np.zeros((channels, short), dtype=np.float64)
    signs = np.linspace(-1.0, 1.0, channels) if channels > 1 else np.zeros(1)
    for number, (begin, end) in enumerate(bounds):
        lo, hi = max(0, begin - xfade), min(short, end + xfade)
        index = np.arange(lo, hi, dtype=np.float64)
        t = index / SYNTH_RATE
        envelope = np.ones(hi - lo, dtype=np.float64)
        if begin > 0:
            envelope *= np.clip((index - (begin - xfade)) / (2 * xfade), 0, 1)
        if end < short:
            envelope *= np.clip(((end + xfade) - index) / (2 * xfade), 0, 1)
        envelope *= 0.8 + 0.2 * np.sin(2 * math.pi * wobble * t + number)
        root, minor = progression[(number + offset) % len(progression)]
        notes = [key + root - 12, key + root, key + root + (3 if minor else 4), key + root + 7]
        for channel, sign in enumerate(signs):
            voice = np.zeros(hi - lo, dtype=np.float64)
            for note in notes:
                freq = 440.0 * 2 ** ((note - 69) / 12) * (1 + sign * detune)
                for multiple, gain in _HARMONICS:
                    voice += gain * np.sin(2 * math.pi * freq * multiple * t + note)
            low[channel, lo:hi] += voice * envelope
    positions = np.arange(length, dtype=np.float64) / step
    grid = np.arange(short, dtype=np.float64)
    return np.stack([np.interp(positions, grid, channel) for channel in low]).astype(np.float32)


def _segments(length: int, changes: list[int]) -> list[tuple[int, int]]:
    edges = [0, *sorted(c for c in changes if 0 < c < length), length]
    longest = round(_LONGEST_CHORD * SYNTH_RATE)
    segments: list[tuple[int, int]] = []
    for begin, end in zip(edges, edges[1:], strict=False):
        parts = max(1, math.ceil((end - begin) / longest))
        step = (end - begin) / parts
        segments.extend(
            (begin + round(step * i), begin + round(step * (i + 1))) for i in range(parts)
        )
    return segments
