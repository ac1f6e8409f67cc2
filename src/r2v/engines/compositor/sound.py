"""The soundtrack: reference audio, a reference video's own track, or a synthesized pad.

The storyboard's `SoundPlan` names the source; this module turns it into float32 stereo
samples at 48 kHz of exactly the video's length: decoded, mixed, looped (with a short
crossfade at each seam) or cut, faded in and out, and peak-normalised so nothing clips.
With no audio to use, a seeded pad plays a chord progression that changes on the cuts.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from r2v.engines.base import EngineRequest
from r2v.engines.compositor.storyboard import STREAM_SOUND, Storyboard
from r2v.errors import ReferenceInvalid
from r2v.media.decode import decode_audio
from r2v.media.encode import AUDIO_CHANNELS, AUDIO_RATE
from r2v.protocol import FPS, MAX_DURATION

Audio = NDArray[np.float32]
"""Float32 samples shaped (channels, samples) at AUDIO_RATE."""

SAMPLES_PER_FRAME = AUDIO_RATE // FPS
PEAK = 0.89  # -1 dBFS: headroom for the AAC encoder's overshoot
LOOP_CROSSFADE = 0.05
FADE_IN = 0.01
FADE_OUT = 0.5
SYNTH_FADE_IN = 0.6
SILENCE = 1e-4
SYNTH_RATE = 12000

# Chord roots (semitones above the key) and whether each chord is minor.
_MAJOR_PROGRESSION = ((0, False), (9, True), (5, False), (7, False))
_MINOR_PROGRESSION = ((0, True), (8, False), (3, False), (10, False))
_HARMONICS = ((1.0, 1.0), (2.0, 0.3), (3.0, 0.1))
_CHORD_CROSSFADE = 0.3
_LONGEST_CHORD = 4.0


def render_soundtrack(board: Storyboard, request: EngineRequest) -> Audio | None:
    """The soundtrack the storyboard plans, or None when the video has no audio stream."""
    plan = board.sound
    if plan.source == "none":
        return None
    length = board.frames * SAMPLES_PER_FRAME
    track: Audio | None = None
    if plan.source == "audio":
        tracks = [
            _decode(request.audios[index].path, f"@Audio{index + 1}") for index in plan.indices
        ]
        audible = [fit_length(t, length) for t in tracks if _audible(t)]
        track = np.sum(audible, axis=0, dtype=np.float32) if audible else None
    elif plan.source == "video":
        index = plan.indices[0]
        decoded = _decode(request.videos[index].path, f"@Video{index + 1}")
        track = fit_length(decoded, length) if _audible(decoded) else None
    if track is None:  # planned synth, or references that turned out silent
        track = synth_pad(board.seed, length, chord_changes(board))
        return normalise(fade(track, SYNTH_FADE_IN, FADE_OUT))
    return normalise(fade(track, FADE_IN, FADE_OUT))


def _decode(path: Path, label: str) -> Audio:
    try:
        return decode_audio(path, AUDIO_RATE, AUDIO_CHANNELS, max_seconds=MAX_DURATION)
    except ReferenceInvalid as error:
        raise ReferenceInvalid(f"{label}: {error.message}") from error


def _audible(track: Audio) -> bool:
    return track.shape[1] > 0 and float(np.max(np.abs(track))) > SILENCE


def fit_length(track: Audio, length: int) -> Audio:
    """Cut `track` to `length` samples, or loop it with a short crossfade at each seam."""
    size = track.shape[1]
    if size >= length:
        return np.ascontiguousarray(track[:, :length])
    overlap = min(round(LOOP_CROSSFADE * AUDIO_RATE), size // 4)
    ramp = np.linspace(0.0, 1.0, overlap, dtype=np.float32) if overlap else None
    out = np.zeros((track.shape[0], length), dtype=np.float32)
    position = 0
    first = True
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


def fade(track: Audio, fade_in: float, fade_out: float) -> Audio:
    """Linear fade-in and fade-out, each at most a quarter of the track."""
    size = track.shape[1]
    out = track.copy()
    rise = min(round(fade_in * AUDIO_RATE), size // 4)
    fall = min(round(fade_out * AUDIO_RATE), size // 4)
    if rise:
        out[:, :rise] *= np.linspace(0.0, 1.0, rise, dtype=np.float32)
    if fall:
        out[:, size - fall :] *= np.linspace(1.0, 0.0, fall, dtype=np.float32)
    return out


def normalise(track: Audio, peak: float = PEAK) -> Audio:
    """Scale so the loudest sample sits at `peak`; silence stays silence."""
    loudest = float(np.max(np.abs(track))) if track.size else 0.0
    if loudest < SILENCE:
        return track
    return (track * np.float32(peak / loudest)).astype(np.float32)


def chord_changes(board: Storyboard) -> list[int]:
    """Sample positions where the pad changes chord: the middle of each crossfade."""
    return [(shot.start + shot.fade_in // 2) * SAMPLES_PER_FRAME for shot in board.shots[1:]]


def synth_pad(seed: int, length: int, changes: list[int]) -> Audio:
    """A soft stereo chord pad, seeded: key, mode and progression come from `seed`.

    Each chord holds from one change to the next (long ones are split so the harmony keeps
    moving) and crossfades into the next; voices are slightly detuned between the channels
    for width. Phases come from absolute time, so a held note never clicks at a seam.
    """
    rng = np.random.default_rng([seed, STREAM_SOUND])
    key = 45 + int(rng.integers(0, 8))  # A2 to E3
    progression = _MINOR_PROGRESSION if rng.random() < 0.5 else _MAJOR_PROGRESSION
    offset = int(rng.integers(0, len(progression)))
    detune = float(rng.uniform(0.0015, 0.003))
    wobble = float(rng.uniform(0.1, 0.3))
    # The pad's highest partial is under 1.5 kHz, so it is computed at a quarter of the
    # output rate and linearly interpolated up: a quarter of the sines, images below -50 dB.
    step = AUDIO_RATE // SYNTH_RATE
    short = length // step + 2
    bounds = _segments(short, [change // step for change in changes])
    xfade = round(_CHORD_CROSSFADE * SYNTH_RATE)
    low = np.zeros((AUDIO_CHANNELS, short), dtype=np.float64)
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
        for channel, sign in enumerate((-1.0, 1.0)):
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
