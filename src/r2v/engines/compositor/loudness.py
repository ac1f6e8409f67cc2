"""Loudness: measuring it (ITU-R BS.1770), matching clips to each other, and a limiter.

Integrated loudness follows BS.1770-4: K-weighting (a high shelf for the head's effect and
a high-pass), mean square over 400 ms blocks overlapping by 75%, an absolute gate at
-70 LUFS and a relative gate 10 LU below the ungated level. The two K-weighting biquads are
applied in the frequency domain (one FFT per channel), which keeps everything vectorised.

The limiter is a look-ahead peak limiter built from two sliding-window passes: the gain
each sample needs, a moving minimum of it, then a moving average over the same window. The
average of minima that all cover a sample never exceeds that sample's own need, so no
sample passes the ceiling, and the gain changes smoothly over the window instead of
flattening single peaks (which would distort).
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np
from numpy.typing import NDArray

Audio = NDArray[np.float32]
"""Float32 samples shaped (channels, samples)."""

SILENT = -math.inf
TARGET_LUFS = -16.0
"""The soundtrack's integrated loudness: the level streaming services normalise stereo to."""
CEILING = 10 ** (-1.0 / 20)
"""-1 dBFS: headroom for the AAC encoder's overshoot."""

_BLOCK, _HOP = 0.4, 0.1
_ABSOLUTE_GATE, _RELATIVE_GATE = -70.0, -10.0
_LOOKAHEAD = 0.005
_TAIL = 4096
# The BS.1770 K-weighting filters as specified at 48 kHz: a high shelf, then a high-pass.
_SHELF = (
    (1.53512485958697, -2.69169618940638, 1.19839281085285),
    (-1.69065929318241, 0.73248077421585),
)
_HIGHPASS = ((1.0, -2.0, 1.0), (-1.99004745483398, 0.99007225036621))


def k_weighted(track: Audio) -> NDArray[np.float32]:
    """`track` through the K-weighting filters (48 kHz), by multiplication in frequency."""
    size = track.shape[1]
    # A short zero tail keeps the filters' response from wrapping around: both settle
    # within a few hundred samples.
    length = cv2.getOptimalDFTSize(size + _TAIL)
    spectrum = np.fft.rfft(track.astype(np.float32), n=length, axis=1)
    weighted = np.fft.irfft(spectrum * _response(length), n=length, axis=1)[:, :size]
    return weighted.astype(np.float32, copy=False)


@functools.lru_cache(maxsize=4)
def _response(length: int) -> NDArray[np.complex64]:
    """The K-weighting filters' frequency response at the bins of a `length`-point rfft."""
    z = np.exp(-1j * np.pi * np.arange(length // 2 + 1) / (length / 2))
    response = np.ones_like(z)
    for (b0, b1, b2), (a1, a2) in (_SHELF, _HIGHPASS):
        response *= (b0 + b1 * z + b2 * z * z) / (1 + a1 * z + a2 * z * z)
    weights: NDArray[np.complex64] = response.astype(np.complex64)
    return weights


def integrated_loudness(track: Audio, rate: int = 48000) -> float:
    """The gated loudness of `track` in LUFS; -inf for silence."""
    if track.shape[1] == 0:
        return SILENT
    power = k_weighted(track).astype(np.float64) ** 2
    block, hop = round(_BLOCK * rate), round(_HOP * rate)
    if track.shape[1] < block:
        energies = power.mean(axis=1, keepdims=True)
    else:
        sums = np.concatenate([np.zeros((power.shape[0], 1)), np.cumsum(power, axis=1)], axis=1)
        starts = np.arange(0, track.shape[1] - block + 1, hop)
        energies = (sums[:, starts + block] - sums[:, starts]) / block
    per_block = energies.sum(axis=0)  # channel weights are 1 for left and right
    with np.errstate(divide="ignore"):
        levels = -0.691 + 10 * np.log10(per_block)
    kept = per_block[levels > _ABSOLUTE_GATE]
    if kept.size == 0:
        return SILENT
    threshold = -0.691 + 10 * math.log10(float(kept.mean())) + _RELATIVE_GATE
    with np.errstate(divide="ignore"):
        kept = kept[-0.691 + 10 * np.log10(kept) > threshold]
    return -0.691 + 10 * math.log10(float(kept.mean()))


def match_loudness(track: Audio, target: float, *, max_gain_db: float = 30.0) -> Audio:
    """`track` scaled to `target` LUFS (boosting at most `max_gain_db`); silence unchanged."""
    level = integrated_loudness(track)
    if level == SILENT:
        return track
    gain_db = min(target - level, max_gain_db)
    return (track * np.float32(10 ** (gain_db / 20))).astype(np.float32)


def limit(track: Audio, ceiling: float = CEILING, rate: int = 48000) -> Audio:
    """Keep every sample within ±`ceiling` with a smooth 5 ms look-ahead gain."""
    peak = np.max(np.abs(track), axis=0)
    if track.size == 0 or float(peak.max()) <= ceiling:
        return track
    need = np.minimum(1.0, ceiling / np.maximum(peak, 1e-12)).astype(np.float32)
    width = 2 * round(_LOOKAHEAD * rate) + 1
    row = cv2.copyMakeBorder(need[None, :], 0, 0, width, width, cv2.BORDER_CONSTANT, value=1.0)
    lowest = cv2.erode(row, np.ones((1, width), np.uint8), borderType=cv2.BORDER_REPLICATE)
    smooth = cv2.blur(lowest, (width, 1), borderType=cv2.BORDER_REPLICATE)[0, width:-width]
    limited: Audio = np.clip(track * smooth[None, :], -ceiling, ceiling).astype(np.float32)
    return limited


def master(track: Audio, target: float = TARGET_LUFS) -> Audio:
    """The final soundtrack: at `target` loudness, peaks limited to the ceiling."""
    return limit(match_loudness(track, target))
