"""Onsets: the moments a sound starts (a drum hit, a new note), for cutting and looping
on the beat.

Spectral flux: the track is summed to mono and reduced to 12 kHz, cut into 512-sample
windows every 128 samples (about 11 ms), and each window's log-magnitude spectrum is
compared with the one before; the summed rise is the flux. Onsets are the flux's local
peaks that stand well above its local average and above an absolute floor (so a steady
tone or stationary noise has none), at least 100 ms apart.

The beat grid is the period and phase the onsets keep: for each candidate period (40-240
beats a minute) the onsets' phases are averaged as unit vectors, weighted by strength; a
period they agree on has a long average. Every fraction of the true period fits as well,
so the longest period that fits is the beat; a least-squares line through the onsets'
beat numbers then refines it to a fraction of a millisecond. Music loops on that grid: a
whole number of bars (of four beats) from just before a beat, so every beat after a seam
falls where the grid puts it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from r2v.engines.compositor.clips import LOOP_CROSSFADE, Audio, fit_length

_DECIMATE = 4
_WINDOW, _HOP = 512, 128
_COMPRESSION = 100.0
_AVERAGE_SECONDS = 0.2  # the local average's half-width
_PEAK_SECONDS = 0.05  # a peak is the largest flux within this distance
_MIN_GAP = 0.1
_RELATIVE = 0.1  # of the track's largest flux: weaker rises are not worth cutting on
_ABOVE_AVERAGE = 1.5  # times the local average: stationary noise flickers below this
_FLOOR = 20.0  # summed log-magnitude rise: a steady tone stays near 1, a soft note tops 60
# The flux rises most soon after a sound's start enters a window, before the window's
# centre reaches it; the onset is placed this share of a window after the window's start
# (measured on clicks: within 5 ms).
_LEAD = 0.77

_SHORTEST_BEAT, _LONGEST_BEAT = 0.25, 1.5  # seconds: 240 to 40 beats a minute
_PERIOD_STEP = 0.0005
_FIT = 0.85  # how closely the onsets must agree on a period's phase (1: exactly)
_ON_GRID = 0.15  # of a period: an onset this close to a grid point is on it
_LEAST_BEATS = 8  # fewer onsets line up on some period by chance too often
BEATS_PER_BAR = 4
_PRE_ROLL = 0.01  # seconds between a seam's crossfade and the beat after it


@dataclass(frozen=True)
class BeatGrid:
    """Beats every `period` seconds, the first on-grid onset at `first` seconds."""

    period: float
    first: float


def detect_onsets(track: NDArray[np.float32], rate: int = 48000) -> list[tuple[float, float]]:
    """(seconds, strength 0-1) of each onset in `track` (channels, samples), in time order."""
    mono = track.mean(axis=0, dtype=np.float64)
    usable = len(mono) // _DECIMATE * _DECIMATE
    low = mono[:usable].reshape(-1, _DECIMATE).mean(axis=1)
    reduced = rate / _DECIMATE
    if len(low) < 2 * _WINDOW:
        return []
    windows = sliding_window_view(low, _WINDOW)[::_HOP] * np.hanning(_WINDOW)
    spectra = np.log1p(_COMPRESSION * np.abs(np.fft.rfft(windows, axis=1)))
    flux = np.concatenate([[0.0], np.maximum(np.diff(spectra, axis=0), 0.0).sum(axis=1)])
    top = float(flux.max())
    if top < _FLOOR:
        return []
    step = _HOP / reduced
    half = max(1, round(_AVERAGE_SECONDS / step))
    average = np.convolve(np.pad(flux, half, mode="edge"), np.ones(2 * half + 1), "valid")
    average /= 2 * half + 1
    reach = max(1, round(_PEAK_SECONDS / step))
    peaks = sliding_window_view(np.pad(flux, reach, mode="constant"), 2 * reach + 1).max(axis=1)
    floor = np.maximum(max(_FLOOR, _RELATIVE * top), _ABOVE_AVERAGE * average)
    chosen = np.flatnonzero((flux >= peaks) & (flux > floor))
    found: list[tuple[float, float]] = []
    for index in sorted(chosen, key=lambda i: -flux[i]):  # strongest first
        seconds = (index * _HOP + _LEAD * _WINDOW) / reduced
        if all(abs(seconds - other) >= _MIN_GAP for other, _ in found):
            found.append((float(seconds), float(flux[index] / top)))
    return sorted(found)


def beat_grid(onsets: list[tuple[float, float]]) -> BeatGrid | None:
    """The beat that `onsets` (seconds, strength) keep, or None when they keep none."""
    if len(onsets) < _LEAST_BEATS:
        return None
    times = np.array([t for t, _ in onsets])
    weights = np.array([w for _, w in onsets])
    periods = np.arange(_SHORTEST_BEAT, _LONGEST_BEAT + _PERIOD_STEP / 2, _PERIOD_STEP)
    phasors = np.exp(2j * np.pi * times[None, :] / periods[:, None])
    fit = np.abs(phasors @ weights) / weights.sum()
    padded = np.pad(fit, 1)
    peaks = (fit >= padded[:-2]) & (fit >= padded[2:]) & (fit >= _FIT)
    if not peaks.any():
        return None
    period = float(periods[np.flatnonzero(peaks)[-1]])
    # Number the onsets near the grid, then fit time = first + beat * period to them.
    start = float(times[np.argmax(weights)])
    beats = (times - start) / period
    near = np.abs(beats - np.round(beats)) <= _ON_GRID
    numbers = np.round(beats[near])
    if near.sum() < _LEAST_BEATS or numbers.max() - numbers.min() < _LEAST_BEATS - 1:
        return None
    slope, offset = np.polyfit(numbers, times[near], 1)
    return BeatGrid(float(slope), float(offset + numbers.min() * slope))


def loop_on_beats(track: Audio, length: int, rate: int = 48000) -> Audio:
    """`track` looped (or cut) to `length` samples, its seams on its own beat grid: the
    loop is a whole number of bars (else beats) from just before a beat, so the beats go
    on at the same tempo and phase after every seam. Without a beat it loops as it is."""
    size = track.shape[1]
    if size >= length:
        return fit_length(track, length, loop=True, rate=rate)
    grid = beat_grid(detect_onsets(track, rate))
    if grid is None:
        return fit_length(track, length, loop=True, rate=rate)
    overlap = round(LOOP_CROSSFADE * rate)
    # The seam's crossfade ends just before a beat, and reads `overlap` samples past the
    # loop's end.
    begin = max(0.0, grid.first - LOOP_CROSSFADE - _PRE_ROLL)
    room = (size - overlap) / rate - begin
    bar = BEATS_PER_BAR * grid.period
    beats = math.floor(room / bar) * BEATS_PER_BAR or math.floor(room / grid.period)
    if beats < 1:
        return fit_length(track, length, loop=True, rate=rate)
    start = round(begin * rate)
    end = start + round(beats * grid.period * rate)
    # fit_length overlaps each repeat by its crossfade, so a piece one crossfade longer
    # than the loop repeats exactly every loop.
    body = fit_length(track[:, start : end + overlap], length - start, loop=True, rate=rate)
    return np.concatenate([track[:, :start], body], axis=1)
