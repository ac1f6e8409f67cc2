"""Loudness: measuring it (ITU-R BS.1770), matching clips to each other, and a limiter.

Integrated loudness follows BS.1770-4: K-weighting (a high shelf for the head's effect and
a high-pass), mean square over 400 ms blocks overlapping by 75%, an absolute gate at
-70 LUFS and a relative gate 10 LU below the ungated level. The two K-weighting biquads are
applied in the frequency domain (one FFT per channel), which keeps everything vectorised.

The limiter holds the true peak: the signal's peaks between samples, which a DAC or a
decoder reconstructs, as BS.1770-4 Annex 2 measures them (4x oversampled with its 48-tap
interpolation filter). It is a look-ahead limiter built from two sliding-window passes: the
gain each sample needs, a moving minimum of it, then a moving average over the same window.
The average of minima that all cover a sample never exceeds that sample's own need, and the
gain changes smoothly over the window instead of flattening single peaks (which would
distort). A smooth gain bends the waveform a little, so the result is measured again and
what is still over goes through once more. A lossy coder then rebuilds the peaks with some
overshoot of its own, which `limit_for_codec` measures on the decoded result and limits
away.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Protocol, TypeVar

import cv2
import numpy as np
from numpy.typing import NDArray

Audio = NDArray[np.float32]
"""Float32 samples shaped (channels, samples)."""

SILENT = -math.inf
TARGET_LUFS = -16.0
"""The soundtrack's integrated loudness: the level streaming services normalise stereo to."""
CEILING = 10 ** (-1.0 / 20)
"""-1 dBTP: the most a soundtrack's true peak may reach (EBU R 128)."""
CODEC_HEADROOM_DB = 0.5
"""How far under the ceiling `master` holds the mix: AAC reconstructs sharp transients with
some overshoot (about 0.8 dB measured on noisy drum hits at 160 kbit/s with the default
coder), which mostly comes out of this margin; `limit_for_codec` takes care of the rest."""

_BLOCK, _HOP = 0.4, 0.1
_ABSOLUTE_GATE, _RELATIVE_GATE = -70.0, -10.0
_LOOKAHEAD = 0.005
_LIMIT_PASSES = 4
_MARGIN = 10 ** (-0.01 / 20)  # under the ceiling by more than any rounding of the measure
_TAIL = 4096
_CODEC_PASSES = 4
_CODEC_MARGIN = 10 ** (-0.1 / 20)  # aims a re-limited track a little under the ceiling
# BS.1770-4 Annex 2: the first two of the four phases of the 4x interpolation filter; the
# other two are these reversed (the filter is symmetric).
TRUE_PEAK_PHASES = (
    (0.0017089843750, 0.0109863281250, -0.0196533203125, 0.0332031250000, -0.0594482421875,
     0.1373291015625, 0.9721679687500, -0.1022949218750, 0.0476074218750, -0.0266113281250,
     0.0148925781250, -0.0083007812500),
    (-0.0291748046875, 0.0292968750000, -0.0517578125000, 0.0891113281250, -0.1665039062500,
     0.4650878906250, 0.7797851562500, -0.2003173828125, 0.1015625000000, -0.0582275390625,
     0.0330810546875, -0.0189208984375),
)  # fmt: skip
_FILTER_DELAY = 6  # samples: phase 0 of the filter is close to the input 6 samples back
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


def true_peaks(track: Audio) -> NDArray[np.float32]:
    """Per sample, the largest absolute value over all channels of the 4x-oversampled
    signal (BS.1770-4 Annex 2) from that sample to the next: its true peak there."""
    samples = np.ascontiguousarray(track, dtype=np.float32)
    peaks: NDArray[np.float32] = np.abs(samples).max(axis=0)
    for phase in (*TRUE_PEAK_PHASES, *(p[::-1] for p in TRUE_PEAK_PHASES)):
        # Correlating with the reversed taps is the filter's convolution; the anchor lines
        # each interpolated point up with the sample period it falls in.
        taps = np.asarray(phase[::-1], dtype=np.float32)[None, :]
        points = cv2.filter2D(
            samples, -1, taps, anchor=(len(phase) - 1 - _FILTER_DELAY, 0),
            borderType=cv2.BORDER_CONSTANT,
        )  # fmt: skip
        np.maximum(peaks, np.abs(points).max(axis=0), out=peaks)
    return peaks


def true_peak(track: Audio) -> float:
    """The true peak of `track` (linear; 1.0 is 0 dBTP), as BS.1770-4 Annex 2 measures it."""
    return float(true_peaks(track).max()) if track.size else 0.0


def limit(track: Audio, ceiling: float = CEILING, rate: int = 48000) -> Audio:
    """Keep the true peak of `track` within `ceiling` with a smooth 5 ms look-ahead gain."""
    if track.size == 0:
        return track
    width = 2 * round(_LOOKAHEAD * rate) + 1
    goal = ceiling * _MARGIN
    limited = track
    for _ in range(_LIMIT_PASSES):
        peak = true_peaks(limited)
        if float(peak.max()) <= goal:
            return limited
        need = np.minimum(1.0, goal / np.maximum(peak, 1e-12)).astype(np.float32)
        limited = (limited * _smooth_gain(need, width)[None, :]).astype(np.float32)
    # Still over after every pass (never seen): one fixed gain settles it.
    over = true_peak(limited)
    if over > goal:
        limited = (limited * np.float32(goal / over)).astype(np.float32)
    return limited


def _smooth_gain(need: NDArray[np.float32], width: int) -> NDArray[np.float32]:
    """A gain that is nowhere above `need` and changes smoothly over `width` samples: the
    moving average of the moving minimum. Only the stretches around samples that need
    less than 1 are computed; elsewhere it stays 1 (often most of the track)."""
    gain = np.ones_like(need)
    reach = 2 * width  # how far a sample's need moves the gain: the two windows' widths
    below = np.flatnonzero(need < 1.0)
    if below.size == 0:
        return gain
    gaps = np.flatnonzero(np.diff(below) > 2 * reach)
    starts = np.concatenate([below[:1], below[gaps + 1]]) - reach
    ends = np.concatenate([below[gaps], below[-1:]]) + reach + 1
    kernel = np.ones((1, width), np.uint8)
    for start, end in zip(starts, ends, strict=True):
        lo, hi = max(0, int(start)), min(len(need), int(end))
        row = cv2.copyMakeBorder(
            need[None, lo:hi], 0, 0, width, width, cv2.BORDER_CONSTANT, value=1.0
        )
        lowest = cv2.erode(row, kernel, borderType=cv2.BORDER_REPLICATE)
        gain[lo:hi] = cv2.blur(lowest, (width, 1), borderType=cv2.BORDER_REPLICATE)[0, width:-width]
    return gain


class Coded(Protocol):
    """A track in a lossy codec's form."""

    def heard(self) -> Audio:
        """The samples a player decodes from it."""
        ...


CodedT = TypeVar("CodedT", bound=Coded)


def limit_for_codec(
    track: Audio, encode: Callable[[Audio], CodedT], ceiling: float = CEILING
) -> CodedT:
    """`track` coded with `encode`, limited further first where the coder would take its
    true peak over `ceiling`.

    A lossy coder rebuilds sharp peaks with overshoot (a fraction of a dB on drum hits,
    several dB on brickwalled square waves), so what it makes is decoded and measured;
    while that goes over, the track is limited again to a ceiling lowered by the overshoot
    and coded again. Only the peaks give way: a mastered soundtrack keeps its loudness
    within a fraction of a LU, and even brickwalled material loses no more than the
    overshoot. Most tracks are coded once, as they would be anyway.
    """
    held = track
    for _ in range(_CODEC_PASSES):
        coded = encode(held)
        heard = true_peak(coded.heard())
        if heard <= ceiling:
            return coded
        held = limit(held, true_peak(held) * ceiling / heard * _CODEC_MARGIN)
    coded = encode(held)
    heard = true_peak(coded.heard())
    if heard <= ceiling:
        return coded
    # Still over after every pass (never seen; two or three do for the hottest material):
    # one fixed gain, which a coder's output follows closely.
    return encode((held * np.float32(ceiling / heard * _CODEC_MARGIN)).astype(np.float32))


def master(track: Audio, target: float = TARGET_LUFS) -> Audio:
    """The final soundtrack: at `target` loudness, its true peak limited to the ceiling
    less `CODEC_HEADROOM_DB` (-1.5 dBTP)."""
    ceiling = CEILING * 10 ** (-CODEC_HEADROOM_DB / 20)
    return limit(match_loudness(track, target), ceiling)
