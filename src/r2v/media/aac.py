"""The soundtrack's AAC coding, and what a player hears of it.

A lossy coder rebuilds the waveform from fewer bits, and its peaks can come out higher
than they went in (most on sharp transients, and with the standard preset's coder), so a
soundtrack held under a true-peak ceiling may decode above it. `encode_aac` codes a whole
soundtrack at once, exactly as `Mp4Writer` would, into an `AacTrack`: its packets, which
the writer muxes as they are, and `heard()`, the samples a player decodes from them. A
caller can check the soundtrack as it will be heard, and change it, before the file is
written, at the cost of one decode.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import av
import numpy as np
from numpy.typing import NDArray

EncodePreset = Literal["fast", "standard"]
Soundtrack = NDArray[np.float32]
"""Float32 samples shaped (2, samples) at 48 kHz."""

AUDIO_RATE = 48000
AUDIO_CHANNELS = 2
AAC_FRAME = 1024
"""Samples an AAC frame codes."""
AAC_BIT_RATE = 160_000
# FFmpeg's "fast" AAC coder costs a third of the default "twoloop" at this bit rate, with
# a quality difference few ears find; the standard preset keeps the default.
AAC_OPTIONS: dict[EncodePreset, dict[str, str]] = {
    "fast": {"aac_coder": "fast"},
    "standard": {},
}


@dataclass(frozen=True)
class AacTrack:
    """A soundtrack coded to AAC with a preset's settings, ready to mux."""

    packets: tuple[av.Packet[av.AudioStream], ...]
    """The coded frames in order, timed in samples (the first, the coder's priming, at
    -1024), as the writer's own encoder would have made them."""
    samples: int
    """The length of the soundtrack that was coded."""
    preset: EncodePreset
    extradata: bytes | None
    """The coder's configuration, which a decoder needs."""

    def heard(self) -> Soundtrack:
        """What a player decodes from the track: the priming dropped, up to the end of the
        last AAC frame (the few samples past the soundtrack's end are the coder's, and a
        player decodes them too)."""
        decoder = av.AudioCodecContext.create("aac", "r")
        decoder.extradata = self.extradata
        pieces: list[Soundtrack] = []
        priming = 0
        for packet in self.packets:
            for frame in decoder.decode(packet):
                if not pieces and frame.pts is not None:
                    priming = max(0, -frame.pts)
                pieces.append(frame.to_ndarray().astype(np.float32, copy=False))
        if not pieces:
            return np.zeros((AUDIO_CHANNELS, 0), np.float32)
        return np.ascontiguousarray(np.concatenate(pieces, axis=1)[:, priming:])


def open_encoder(preset: EncodePreset) -> av.AudioCodecContext:
    """An AAC encoder with `preset`'s settings (stereo, 48 kHz, 160 kbit/s), opened."""
    encoder = av.AudioCodecContext.create("aac", "w")
    encoder.sample_rate, encoder.layout, encoder.format = AUDIO_RATE, "stereo", "fltp"
    encoder.bit_rate = AAC_BIT_RATE
    encoder.options = dict(AAC_OPTIONS[preset])
    encoder.open()
    return encoder


def encode_aac(audio: Soundtrack, preset: EncodePreset = "fast") -> AacTrack:
    """`audio` coded whole, in the writer's frames of 1024 samples, with `preset`'s coder."""
    samples = checked(audio)
    encoder = open_encoder(preset)
    packets: list[av.Packet[av.AudioStream]] = []
    for start in range(0, samples.shape[1], AAC_FRAME):
        packets.extend(encoder.encode(audio_frame(samples[:, start : start + AAC_FRAME], start)))
    packets.extend(encoder.encode(None))
    return AacTrack(tuple(packets), samples.shape[1], preset, encoder.extradata)


def checked(audio: Soundtrack) -> Soundtrack:
    """`audio` as contiguous float32 (2, samples); a ValueError for any other shape."""
    if audio.ndim != 2 or audio.shape[0] != AUDIO_CHANNELS:
        raise ValueError("audio must be float32 shaped (2, samples) at 48 kHz")
    return np.ascontiguousarray(audio, dtype=np.float32)


def audio_frame(chunk: Soundtrack, start: int) -> av.AudioFrame:
    """Samples (2, n) starting at sample `start`, as a frame for the AAC encoder."""
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="stereo")
    frame.sample_rate = AUDIO_RATE
    frame.pts = start
    frame.time_base = Fraction(1, AUDIO_RATE)
    return frame
