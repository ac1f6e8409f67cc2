"""The soundtrack: the storyboard's sound cues rendered into one stereo track.

Each cue's clip (already brought to a common loudness by the `ReferenceBank`) is taken
from its offset, time-stretched with its picture when it is the sound of a retimed video
(its pitch kept), looped on its beat (music under the whole video) or cut, faded at its
ends and placed on the timeline.

Music ducks: a sidechain follows what must stay in front (speech, a shot's own clip or a
video's own sound) and takes the music down 12 dB wherever that is heard. Its level is
measured every millisecond (RMS over 10 ms); the gain falls in dB-linear ramps over the
50 ms before the voice starts (looking ahead, so no word's start is covered), holds
through gaps between words, and comes back over 300 ms after it stops. The synthesized
score, a filler, goes all the way under a video's own sound instead. The mix is then
brought to -16 LUFS with its true peak limited to -1.5 dBTP (`loudness.master`), so it is
neither clipped nor quieter than other media, and faded in and out. Last, it is coded to
AAC here (`encode_soundtrack`) and decoded again: where the coder rebuilds a peak above
-1 dBTP (drum hits with the standard preset's coder come out 0.8 dB higher than they go
in), the track is limited a little further and coded again (`loudness.limit_for_codec`),
so the file as players decode it keeps the ceiling too. The writer muxes the packets as
they are.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.typing import NDArray

from r2v.engines.compositor import clips
from r2v.engines.compositor.clips import Audio
from r2v.engines.compositor.loudness import limit_for_codec, master, match_loudness
from r2v.engines.compositor.onsets import loop_on_beats
from r2v.engines.compositor.references import CLIP_LUFS, ReferenceBank
from r2v.engines.compositor.score import synth_pad
from r2v.engines.compositor.storyboard import (
    SAMPLES_PER_FRAME,
    STREAM_SOUND,
    SoundCue,
    Storyboard,
)
from r2v.engines.compositor.stretch import FRAME, time_stretch
from r2v.media.aac import AUDIO_CHANNELS, AUDIO_RATE, AacTrack, encode_aac

CUE_FADE_IN = 0.02
CUE_FADE_OUT = 0.25
TRACK_FADE_IN = 0.01
TRACK_FADE_OUT = 0.5
SCORE_FADE_IN = 0.6
DUCK_RAMP = 0.25
"""Seconds the score takes to go under a video's own sound, and to come back."""

DUCK_DB = 12.0
"""How far the music goes under speech and clip sound."""
DUCK_ATTACK, DUCK_HOLD, DUCK_RELEASE = 0.05, 0.1, 0.3
"""Seconds: the dip's ramp down (ending as the voice starts), how long it holds through a
pause, and its ramp back up."""
DUCK_THRESHOLD_DB = CLIP_LUFS - 25.0
"""The RMS (dBFS) above which the sidechain counts as heard: 25 dB under the clips'
common loudness, below any word but above a quiet room."""
_LEVEL_STEPS = 10  # the RMS window, in milliseconds


def mix_soundtrack(board: Storyboard, bank: ReferenceBank) -> Audio:
    """The soundtrack of a storyboard that plans sound: stereo, 48 kHz, its exact length."""
    cues = board.sound.cues
    length = board.frames * SAMPLES_PER_FRAME
    placed: list[tuple[SoundCue, Audio, tuple[int, int]]] = []
    for cue in cues:
        shaped = _layer(cue, bank, length) if cue.source != "score" else None
        if shaped is not None:
            placed.append((cue, *shaped))
    # Music ducks only where speech or a shot's sound is actually heard.
    front = [layer for cue, layer, _ in placed if _in_front(cue)]
    music = [layer for cue, layer, _ in placed if not _in_front(cue)]
    mix = np.zeros((AUDIO_CHANNELS, length), dtype=np.float32)
    for layer in front:
        mix += layer
    gain = duck_gain(mix)[None, :] if front and music else None
    for layer in music:
        mix += layer if gain is None else layer * gain
    video_spans = [span for cue, _, span in placed if cue.source == "video"]
    if any(cue.source == "score" for cue in cues) or not placed:
        # Planned, or the references turned out silent: the score fills in.
        pad = _score(board, length)
        if video_spans:
            ramp = round(DUCK_RAMP * AUDIO_RATE)
            pad *= clips.envelope(length, video_spans, 0.0, ramp)
        mix += pad
    return clips.fade(master(mix), TRACK_FADE_IN, TRACK_FADE_OUT)


def encode_soundtrack(board: Storyboard, bank: ReferenceBank) -> AacTrack:
    """The soundtrack as the file carries it: mixed, then coded with the preset's AAC
    settings, its true peak held under -1 dBTP as players decode it."""
    encode = functools.partial(encode_aac, preset=board.preset)
    return limit_for_codec(mix_soundtrack(board, bank), encode)


def duck_gain(key: Audio, rate: int = AUDIO_RATE) -> NDArray[np.float32]:
    """The music's gain (one value a sample) under `key`, the sound it must not cover:
    1 where `key` is silent, `DUCK_DB` lower where it is heard, with ramps between."""
    size = key.shape[1]
    step = rate // 1000
    steps = -(-size // step)
    power = np.zeros(steps * step)
    power[:size] = np.mean(np.square(key, dtype=np.float64), axis=0)
    power = power.reshape(steps, step).mean(axis=1)
    level = np.convolve(power, np.ones(_LEVEL_STEPS) / _LEVEL_STEPS, mode="same")
    heard = level > 10 ** (DUCK_THRESHOLD_DB / 10)
    if not heard.any():
        return np.ones(size, dtype=np.float32)
    index = np.arange(steps)
    far = 10 * steps  # farther than any ramp
    last = np.maximum.accumulate(np.where(heard, index, -far))
    upcoming = np.minimum.accumulate(np.where(heard, index, 2 * far)[::-1])[::-1]
    per_second = rate / step
    leaving = np.maximum(index - last - DUCK_HOLD * per_second, 0) / (DUCK_RELEASE * per_second)
    coming = (upcoming - index) / (DUCK_ATTACK * per_second)
    depth = np.clip(1.0 - np.minimum(leaving, coming), 0.0, 1.0)
    gain = 10 ** (-DUCK_DB * depth / 20)
    # One value a step, at the step's middle; linear in between.
    centres = (index + 0.5) * step
    return np.interp(np.arange(size), centres, gain).astype(np.float32)


def _in_front(cue: SoundCue) -> bool:
    """Whether the music ducks under `cue`: speech and shots' own sound."""
    return cue.speech or cue.role == "shot"


def _samples(cue: SoundCue) -> tuple[int, int]:
    return (cue.start * SAMPLES_PER_FRAME, cue.end * SAMPLES_PER_FRAME)


def _layer(cue: SoundCue, bank: ReferenceBank, length: int) -> tuple[Audio, tuple[int, int]] | None:
    """The cue's clip shaped and placed on a silent track of `length` samples, and the
    samples where it is heard."""
    source = bank.audio(cue.index) if cue.source == "audio" else bank.video_audio(cue.index)
    start, end = _samples(cue)
    source = source[:, round(cue.offset * AUDIO_RATE) :]
    if not cue.loop:  # only what plays is stretched, and a frame more (whose end fades)
        source = source[:, : math.ceil((end - start) * cue.speed + FRAME * AUDIO_RATE)]
    source = time_stretch(source, cue.speed, AUDIO_RATE)
    if not clips.audible(source) or end <= start:
        return None
    heard = end if cue.loop else min(end, start + source.shape[1])
    if cue.loop:
        shaped = loop_on_beats(source, end - start)
    else:
        shaped = clips.fit_length(source, end - start, loop=False)
    fade_out = CUE_FADE_OUT if end < length or cue.loop else 0.0
    shaped = clips.fade(shaped[:, : heard - start], CUE_FADE_IN if start else 0.0, fade_out)
    layer = np.zeros((AUDIO_CHANNELS, length), dtype=np.float32)
    layer[:, start:heard] = shaped
    return layer, (start, heard)


def _score(board: Storyboard, length: int) -> Audio:
    """The seeded pad, changing chord on the cuts, at the clips' loudness."""
    rng = np.random.default_rng([board.seed, STREAM_SOUND])
    changes = [shot.cut * SAMPLES_PER_FRAME for shot in board.shots[1:]]
    pad = synth_pad(rng, length, changes, AUDIO_RATE, AUDIO_CHANNELS)
    return clips.fade(match_loudness(pad, CLIP_LUFS), SCORE_FADE_IN, 0.0)
