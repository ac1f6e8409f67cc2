"""Onsets: the moments a sound starts (a drum hit, a new note), for cutting on the beat.

Spectral flux: the track is summed to mono and reduced to 12 kHz, cut into 512-sample
windows every 128 samples (about 11 ms), and each window's log-magnitude spectrum is
compared with the one before; the summed rise is the flux. Onsets are the flux's local
peaks that stand well above its local average and above an absolute floor (so a steady
tone or stationary noise has none), at least 100 ms apart.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

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
