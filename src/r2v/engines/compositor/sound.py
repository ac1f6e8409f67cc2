"""The soundtrack: the storyboard's sound cues rendered into one stereo track.

Each cue's clip (already brought to a common loudness by the `ReferenceBank`) is taken
from its offset, retimed with its picture when it is a video's own sound, looped (music
under the whole video) or cut, faded at its ends and placed on the timeline. Background
layers dip under shot cues: reference music by 8 dB, the synthesized score all the way
under a video's own sound. The mix is then brought to -16 LUFS with peaks limited to
-1 dBFS, so it is neither clipped nor quieter than other media, and faded in and out.
"""

from __future__ import annotations

import numpy as np

from r2v.engines.compositor import clips
from r2v.engines.compositor.clips import Audio
from r2v.engines.compositor.loudness import master, match_loudness
from r2v.engines.compositor.references import CLIP_LUFS, ReferenceBank
from r2v.engines.compositor.score import synth_pad
from r2v.engines.compositor.storyboard import (
    SAMPLES_PER_FRAME,
    STREAM_SOUND,
    SoundCue,
    Storyboard,
)
from r2v.media.encode import AUDIO_CHANNELS, AUDIO_RATE

CUE_FADE_IN = 0.02
CUE_FADE_OUT = 0.25
TRACK_FADE_IN = 0.01
TRACK_FADE_OUT = 0.5
SCORE_FADE_IN = 0.6
MUSIC_DUCK = 10 ** (-8 / 20)
DUCK_RAMP = 0.25


def mix_soundtrack(board: Storyboard, bank: ReferenceBank) -> Audio:
    """The soundtrack of a storyboard that plans sound: stereo, 48 kHz, its exact length."""
    cues = board.sound.cues
    length = board.frames * SAMPLES_PER_FRAME
    placed: list[tuple[SoundCue, Audio, tuple[int, int]]] = []
    for cue in cues:
        shaped = _layer(cue, bank, length) if cue.source != "score" else None
        if shaped is not None:
            placed.append((cue, *shaped))
    # Background sound dips only where a shot's sound is actually heard.
    shot_spans = [span for cue, _, span in placed if cue.role == "shot"]
    video_spans = [span for cue, _, span in placed if cue.source == "video"]
    ramp = round(DUCK_RAMP * AUDIO_RATE)
    mix = np.zeros((AUDIO_CHANNELS, length), dtype=np.float32)
    for cue, layer, _ in placed:
        if cue.role == "background" and shot_spans:
            layer *= clips.envelope(length, shot_spans, MUSIC_DUCK, ramp)
        mix += layer
    if any(cue.source == "score" for cue in cues) or not placed:
        # Planned, or the references turned out silent: the score fills in.
        pad = _score(board, length)
        if video_spans:
            pad *= clips.envelope(length, video_spans, 0.0, ramp)
        mix += pad
    return clips.fade(master(mix), TRACK_FADE_IN, TRACK_FADE_OUT)


def _samples(cue: SoundCue) -> tuple[int, int]:
    return (cue.start * SAMPLES_PER_FRAME, cue.end * SAMPLES_PER_FRAME)


def _layer(cue: SoundCue, bank: ReferenceBank, length: int) -> tuple[Audio, tuple[int, int]] | None:
    """The cue's clip shaped and placed on a silent track of `length` samples, and the
    samples where it is heard."""
    source = bank.audio(cue.index) if cue.source == "audio" else bank.video_audio(cue.index)
    source = clips.retime(source[:, round(cue.offset * AUDIO_RATE) :], cue.speed)
    start, end = _samples(cue)
    if not clips.audible(source) or end <= start:
        return None
    heard = end if cue.loop else min(end, start + source.shape[1])
    shaped = clips.fit_length(source, end - start, loop=cue.loop)
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
