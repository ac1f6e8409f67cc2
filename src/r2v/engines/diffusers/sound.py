"""The soundtrack of a diffusers render: the reference audio, else the followed video's.

The model makes pictures only (a generative audio model is a later step), so the sound is
the references': the audio clips the prompt mentions (else all of them) mixed, or the
followed reference video's own track. It is cut or looped to the video's length, faded at
both ends and peak-normalised, as the compositor does. With nothing audible to use, the
video has no audio stream at all rather than a silent one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from r2v.engines.base import EngineRequest
from r2v.errors import ReferenceInvalid
from r2v.grammar import find_mentions
from r2v.media.aac import AUDIO_CHANNELS, AUDIO_RATE
from r2v.media.decode import decode_audio
from r2v.protocol import MAX_DURATION

Audio = NDArray[np.float32]
"""Float32 samples shaped (channels, samples) at AUDIO_RATE."""

PEAK = 0.89  # -1 dBFS: headroom for the AAC encoder's overshoot
SILENCE = 1e-4
FADE_IN = 0.01
FADE_OUT = 0.5
LOOP_CROSSFADE = 0.05


def soundtrack(request: EngineRequest, seconds: int, video: int | None) -> Audio | None:
    """`seconds` of sound for the request, or None for a video without an audio stream."""
    if not request.generate_audio:
        return None
    length = seconds * AUDIO_RATE
    clips = find_mentions(request.prompt, {"audio": len(request.audios)})
    mentioned = list(dict.fromkeys(m.index - 1 for m in clips))
    chosen = mentioned or list(range(len(request.audios)))
    tracks = [_decode(request.audios[i].path, f"@Audio{i + 1}") for i in chosen]
    audible = [fit_length(track, length) for track in tracks if _audible(track)]
    if not audible and video is not None and request.videos[video].has_audio:
        track = _decode(request.videos[video].path, f"@Video{video + 1}")
        audible = [fit_length(track, length)] if _audible(track) else []
    if not audible:
        return None
    mixed = audible[0].copy()
    for track in audible[1:]:
        mixed += track
    return normalise(fade(mixed))


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
    ramp = np.linspace(0.0, 1.0, overlap, dtype=np.float32)
    out = np.zeros((track.shape[0], length), dtype=np.float32)
    position = 0
    while position < length:
        piece = track.copy()
        if overlap:
            if position:
                piece[:, :overlap] *= ramp
            piece[:, size - overlap :] *= ramp[::-1]
        take = min(size, length - position)
        out[:, position : position + take] += piece[:, :take]
        position += size - overlap
    return out


def fade(track: Audio) -> Audio:
    """A click-free start and a half-second fade-out, each at most a quarter of the track."""
    size = track.shape[1]
    out = track.copy()
    rise = min(round(FADE_IN * AUDIO_RATE), size // 4)
    fall = min(round(FADE_OUT * AUDIO_RATE), size // 4)
    if rise:
        out[:, :rise] *= np.linspace(0.0, 1.0, rise, dtype=np.float32)
    if fall:
        out[:, size - fall :] *= np.linspace(1.0, 0.0, fall, dtype=np.float32)
    return out


def normalise(track: Audio) -> Audio:
    """Scale so the loudest sample sits at PEAK; silence stays silence."""
    loudest = float(np.max(np.abs(track))) if track.size else 0.0
    if loudest < SILENCE:
        return track
    return (track * np.float32(PEAK / loudest)).astype(np.float32)
