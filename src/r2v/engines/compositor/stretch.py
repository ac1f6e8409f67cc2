"""Time-stretching: a clip's sound played faster or slower with its pitch kept.

WSOLA, waveform-similarity overlap-add (Verhelst and Roelands, 1993). The output is built
from overlapping Hann-windowed frames of the input, half a frame apart; each frame is taken
from about where the time map puts it (output second t plays input second t x speed), moved
by up to `TOLERANCE` to where it best continues the frame before it: the shift with the
highest normalised cross-correlation against the input that followed that frame. Frames
are copied, never resampled, so every frequency stays where it was, and the shifts line up
periods across each overlap, so a tone or a voice runs on without clicks or phasiness.
Resampling like tape would shift the pitch with the speed instead. The last frames reach
past the input's end and fade its final 20 ms or so, as a clip's sound ends.

The shifts are found on the channels' mean and applied to every channel, which keeps the
stereo image. Each frame costs a few FFTs of a few thousand points: seconds of audio take
milliseconds. Nothing is random, so the same input gives the same output, bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from r2v.engines.compositor.clips import Audio

FRAME = 0.04
"""Seconds a frame: longer than the period of any voice (its crossfades span two) and short
enough that a drum hit is not heard twice."""
TOLERANCE = 0.01
"""Seconds a frame may move from where the time map puts it: at least half the period of
a low voice, so a matching phase is always within reach."""


def time_stretch(track: Audio, speed: float, rate: int = 48000) -> Audio:
    """`track` (channels, samples) played `speed` times as fast with its pitch kept:
    `round(samples / speed)` samples long; the track itself at speed 1."""
    channels, size = track.shape
    if abs(speed - 1.0) < 1e-9 or size < 2:
        return track
    length = round(size / speed)
    hop = max(2, round(FRAME * rate / 2))
    frame = 2 * hop
    reach = round(TOLERANCE * rate)
    count = math.ceil(length / hop) + 1
    # Frame k starts at input sample k * hop * speed - hop, so that its middle plays at
    # output sample k * hop; `front` zeros make room for the first frames and their shifts.
    front = hop + reach
    last_start = round((count - 1) * hop * speed) + 2 * reach
    padded = np.zeros((channels, front + max(size, last_start + 2 * frame)), dtype=np.float32)
    padded[:, front : front + size] = track
    mono = padded.mean(axis=0, dtype=np.float64)
    starts = _frame_starts(mono, count, hop, speed, reach, first=front)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(frame) / frame)).astype(np.float32)
    frames = padded[:, starts[:, None] + np.arange(frame)] * window  # (channels, count, frame)
    # Periodic Hann windows half a frame apart add up to exactly 1.
    out = np.zeros((channels, (count + 1) * hop), dtype=np.float32)
    out[:, : count * hop] += frames[:, :, :hop].reshape(channels, -1)
    out[:, hop:] += frames[:, :, hop:].reshape(channels, -1)
    return np.ascontiguousarray(out[:, hop : hop + length])


def _frame_starts(
    mono: NDArray[np.float64], count: int, hop: int, speed: float, reach: int, *, first: int
) -> NDArray[np.int64]:
    """Where each frame starts in `mono` (padded as `time_stretch` pads): the first where
    the time map says, each later one within `reach` of it where it best continues the one
    before, and not before the input's `first` sample (the padding's silence would dip the
    sound's start)."""
    frame = 2 * hop
    size = 1 << (frame + 2 * reach - 1).bit_length()  # no wrap-around in the correlation
    squares = np.concatenate([[0.0], np.cumsum(mono * mono)])
    starts = np.empty(count, dtype=np.int64)
    starts[0] = reach
    for k in range(1, count):
        follows = mono[starts[k - 1] + hop : starts[k - 1] + hop + frame]
        low = max(round(k * hop * speed), first)  # the planned start less `reach`
        region = mono[low : low + frame + 2 * reach]
        spectrum = np.fft.rfft(region, size) * np.conj(np.fft.rfft(follows, size))
        similarity = np.fft.irfft(spectrum, size)[: 2 * reach + 1]
        ends = squares[low + frame : low + frame + 2 * reach + 1]
        energy = ends - squares[low : low + 2 * reach + 1]
        score = similarity / np.sqrt(np.maximum(energy, 0.0) + 1e-9)
        starts[k] = low + int(np.argmax(score))
    return starts
