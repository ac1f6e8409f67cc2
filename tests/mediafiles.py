"""Real, small, deterministic media files for tests, made on the spot (no network).

`make_image`, `make_video`, `make_ball_video`, `make_wav` and `make_mp3` write files a
client could send; `decode_summary` and `frame_hashes` decode a file independently of
`r2v.media`, so tests can check what the server wrote without trusting the code that
wrote it. `engine_request` is the request those files go into.
"""

from __future__ import annotations

import hashlib
import math
import wave
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from r2v.engines.base import EngineRequest
from r2v.engines.compositor.loudness import TRUE_PEAK_PHASES

ImageFormat = Literal["JPEG", "PNG", "WEBP"]
Container = Literal["mp4", "mov"]

_AUDIO_RATE = 48000


def pattern(width: int, height: int, seed: int = 0) -> NDArray[np.uint8]:
    """A colourful RGB picture with structure: gradients, a grid of shapes, a bright disc.

    The seed picks the palette and the shapes' places, so two seeds give clearly different
    pictures; edges everywhere make motion and cropping visible.
    """
    rng = np.random.default_rng(seed)
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    phase = rng.uniform(0, 2 * math.pi, size=3).astype(np.float32)
    image = np.empty((height, width, 3), dtype=np.float32)
    image[..., 0] = 0.5 + 0.5 * np.sin(2 * math.pi * xs + phase[0])
    image[..., 1] = 0.5 + 0.5 * np.sin(2 * math.pi * ys + phase[1])
    image[..., 2] = 0.5 + 0.5 * np.sin(2 * math.pi * (xs + ys) + phase[2])
    canvas = np.ascontiguousarray((image * 255).astype(np.uint8))
    unit = max(4, min(width, height) // 8)
    for _ in range(12):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        if rng.random() < 0.5:
            cv2.rectangle(canvas, (x, y), (x + unit, y + unit // 2), colour, -1)
        else:
            cv2.circle(canvas, (x, y), unit // 2, colour, -1)
    for gx in range(0, width, unit * 2):
        cv2.line(canvas, (gx, 0), (gx, height - 1), (20, 20, 20), 1)
    cv2.circle(canvas, (width // 3, height // 2), max(2, unit), (255, 250, 240), -1)
    return canvas


def engine_request(prompt: str, **changes: Any) -> EngineRequest:
    """A request for 4 silent seconds of fast 480p 16:9 with seed 7 and no references, with
    `changes` (any field) on top: the cheapest render, so a test names only what it is about.
    A test's expectations rest on its seed and flags, so it keeps passing the ones it had."""
    base = EngineRequest(
        model="seedance-2.0-fast-reference-to-video",
        preset="fast",
        prompt=prompt,
        resolution="480p",
        aspect_ratio="16:9",
        duration=4,
        generate_audio=False,
        seed=7,
    )
    return replace(base, **changes)


def make_image(
    path: Path, width: int, height: int, fmt: ImageFormat = "JPEG", seed: int = 0
) -> Path:
    """Write a `pattern` picture as JPEG, PNG or WebP and return its path."""
    picture = Image.fromarray(pattern(width, height, seed))
    options: dict[str, int] = {"quality": 92} if fmt in ("JPEG", "WEBP") else {}
    picture.save(path, format=fmt, **options)
    return path


def make_video(
    path: Path,
    width: int = 320,
    height: int = 240,
    seconds: float = 2.0,
    fps: int = 24,
    audio: bool = True,
    pan_px_per_frame: int = 0,
    container: Container = "mp4",
    seed: int = 0,
) -> Path:
    """Write an H.264 yuv420p video (with an AAC 48 kHz stereo tone when `audio`).

    With `pan_px_per_frame` > 0 the picture slides right by that many pixels a frame
    (wrapping around), so motion can be detected in whatever is made from it.
    """
    base = pattern(width, height, seed)
    frames = round(seconds * fps)
    with av.open(str(path), "w", format="mov" if container == "mov" else "mp4") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "20"}
        sound = out.add_stream("aac", rate=_AUDIO_RATE, layout="stereo") if audio else None
        for index in range(frames):
            picture = np.roll(base, index * pan_px_per_frame, axis=1)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode())
        if sound is not None:
            _mux_tone(out, sound, seconds, 330.0)
    return path


def make_ball_video(
    path: Path,
    width: int = 320,
    height: int = 180,
    seconds: float = 2.0,
    fps: int = 24,
    step_px: int = 4,
    radius: int = 10,
    tone_hz: float = 500.0,
) -> Path:
    """Write an H.264 video of a white ball crossing a dark background at a constant
    `step_px` pixels a frame, with a steady `tone_hz` tone (AAC, 48 kHz stereo).

    Whatever is made from it shows a change of speed: in the picture as uneven steps,
    repeated frames or blends of two positions; in the sound as a shifted pitch.
    """
    frames = round(seconds * fps)
    if 2 * (radius + 4) + step_px * (frames - 1) > width:
        raise ValueError("the ball would leave the frame")
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "12"}
        sound = out.add_stream("aac", rate=_AUDIO_RATE, layout="stereo")
        for index in range(frames):
            picture = np.full((height, width, 3), BALL_BACKGROUND, dtype=np.uint8)
            centre = (radius + 4 + step_px * index, height // 2)
            cv2.circle(picture, centre, radius, (255, 255, 255), -1, cv2.LINE_AA)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode())
        _mux_tone(out, sound, seconds, tone_hz)
    return path


BALL_BACKGROUND = 40
"""The grey level behind `make_ball_video`'s ball."""


def _mux_tone(
    out: av.container.OutputContainer, sound: av.AudioStream, seconds: float, freq: float
) -> None:
    tone = _tone(seconds, freq, _AUDIO_RATE, 2)
    for start in range(0, tone.shape[1], 1024):
        chunk = np.ascontiguousarray(tone[:, start : start + 1024])
        audio_frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        audio_frame.sample_rate = _AUDIO_RATE
        audio_frame.pts = start
        audio_frame.time_base = Fraction(1, _AUDIO_RATE)
        out.mux(sound.encode(audio_frame))
    out.mux(sound.encode())


def _tone(seconds: float, freq: float, rate: int, channels: int) -> NDArray[np.float32]:
    t = np.arange(round(seconds * rate), dtype=np.float64) / rate
    wave_ = (0.5 * np.sin(2 * math.pi * freq * t)).astype(np.float32)
    return np.repeat(wave_[None, :], channels, axis=0)


def make_wav(
    path: Path, seconds: float = 2.0, freq: float = 440.0, rate: int = 44100, channels: int = 1
) -> Path:
    """Write a 16-bit PCM WAV sine tone."""
    tone = _tone(seconds, freq, rate, channels)
    return write_wav(path, (tone.T * 32767).astype("<i2"), rate)


def write_wav(path: Path, pcm: NDArray[np.int16], rate: int) -> Path:
    """Write 16-bit PCM samples, shaped (samples,) for mono or (samples, channels), as a
    WAV file and return its path."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1 if pcm.ndim == 1 else pcm.shape[1])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.ascontiguousarray(pcm, dtype="<i2").tobytes())
    return path


def make_mp3(path: Path, seconds: float = 2.0, freq: float = 440.0) -> Path:
    """Write a 44.1 kHz stereo MP3 sine tone with libmp3lame."""
    rate = 44100
    tone = _tone(seconds, freq, rate, 2)
    with av.open(str(path), "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=rate, layout="stereo")
        stream.format = "fltp"
        for start in range(0, tone.shape[1], 1152):
            chunk = np.ascontiguousarray(tone[:, start : start + 1152])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


@dataclass(frozen=True)
class DecodeSummary:
    """What a file holds, found by decoding every frame of it."""

    container: str
    width: int
    height: int
    fps: float
    video_frames: int
    video_duration: float
    """Seconds from the first frame's start to the last frame's end."""
    video_codec: str | None
    pix_fmt: str | None
    has_audio: bool
    audio_duration: float
    """Seconds of decoded audio samples."""
    audio_codec: str | None
    audio_rate: int
    audio_channels: int


def decode_summary(path: Path) -> DecodeSummary:
    """Decode `path` completely with PyAV and describe it."""
    with av.open(str(path)) as source:
        video = source.streams.video[0] if source.streams.video else None
        audio = source.streams.audio[0] if source.streams.audio else None
        frames, first, last = 0, None, None
        fps = 0.0
        width = height = 0
        pix_fmt = None
        if video is not None:
            fps = float(video.average_rate or 0)
            for frame in source.decode(video):
                frames += 1
                first = frame.time if first is None else first
                last = frame.time
                width, height, pix_fmt = frame.width, frame.height, frame.format.name
        video_duration = 0.0
        if first is not None and last is not None and fps:
            video_duration = last - first + 1 / fps
        samples, rate, channels = 0, 0, 0
        if audio is not None:
            source.seek(0)
            for chunk in source.decode(audio):
                samples += chunk.samples
                rate, channels = chunk.sample_rate, len(chunk.layout.channels)
        return DecodeSummary(
            container=source.format.name,
            width=width,
            height=height,
            fps=fps,
            video_frames=frames,
            video_duration=video_duration,
            video_codec=video.codec_context.name if video is not None else None,
            pix_fmt=pix_fmt,
            has_audio=audio is not None,
            audio_duration=samples / rate if rate else 0.0,
            audio_codec=audio.codec_context.name if audio is not None else None,
            audio_rate=rate,
            audio_channels=channels,
        )


def frame_hashes(path: Path) -> list[str]:
    """The sha256 of every decoded video frame's pixels, in order."""
    hashes: list[str] = []
    with av.open(str(path)) as source:
        for frame in source.decode(video=0):
            hashes.append(hashlib.sha256(frame.to_ndarray().tobytes()).hexdigest())
    return hashes


def decoded_frames(path: Path, every: int = 1) -> list[NDArray[np.uint8]]:
    """Every `every`th decoded video frame as an RGB array (for small test videos only)."""
    frames: list[NDArray[np.uint8]] = []
    with av.open(str(path)) as source:
        for index, frame in enumerate(source.decode(video=0)):
            if index % every == 0:
                frames.append(frame.to_ndarray(format="rgb24"))  # type: ignore[arg-type]
    return frames


def pad_to(path: Path, size: int) -> Path:
    """Grow a media file to exactly `size` bytes with padding its format ignores.

    MP4/MOV get a trailing `free` box; MP3 a leading ID3v2 tag of padding; JPEG and PNG
    trailing zero bytes, which their decoders never read.
    """
    data = path.read_bytes()
    extra = size - len(data)
    if extra < 0:
        raise ValueError(f"{path.name} is already {len(data)} bytes")
    if data[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide"):
        if 0 < extra < 8:
            raise ValueError("an MP4 box needs at least 8 bytes")
        padding = (extra.to_bytes(4, "big") + b"free" + bytes(extra - 8)) if extra else b""
    elif path.suffix == ".mp3":
        if 0 < extra < 10:
            raise ValueError("an ID3v2 tag needs at least 10 bytes")
        body = extra - 10
        syncsafe = bytes((body >> shift) & 0x7F for shift in (21, 14, 7, 0))
        path.write_bytes(b"ID3\x04\x00\x00" + syncsafe + bytes(body) + data if extra else data)
        return path
    else:
        padding = bytes(extra)
    path.write_bytes(data + padding)
    return path


def make_camera_video(
    path: Path,
    width: int = 320,
    height: int = 180,
    seconds: float = 2.0,
    fps: int = 24,
    pan: tuple[float, float] = (0.0, 0.0),
    zoom: float = 1.0,
    audio: bool = False,
    seed: int = 0,
) -> Path:
    """Write an H.264 video shot by a camera moving over a large `pattern` picture.

    `pan` is the camera's move in output pixels a frame (positive x: the camera pans right,
    so the content slides left); `zoom` is its zoom factor a frame (above 1: pushing in).
    Views are resampled with sub-pixel accuracy, like a real camera's, with no wrapping.
    """
    frames = round(seconds * fps)
    reach_x = abs(pan[0]) * frames + width
    reach_y = abs(pan[1]) * frames + height
    world_w, world_h = round(reach_x * 1.3) + 64, round(reach_y * 1.3) + 64
    world = pattern(world_w, world_h, seed)
    cx = world_w / 2 - pan[0] * frames / 2
    cy = world_h / 2 - pan[1] * frames / 2
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "18"}
        for index in range(frames):
            scale = 1.0 / zoom**index  # world pixels per output pixel
            x0 = cx + pan[0] * index - width * scale / 2
            y0 = cy + pan[1] * index - height * scale / 2
            matrix = np.array([[scale, 0.0, x0], [0.0, scale, y0]], dtype=np.float64)
            view = cv2.warpAffine(
                world, matrix, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
            )
            frame = av.VideoFrame.from_ndarray(view, format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode())
    if audio:
        raise ValueError("make_camera_video writes silent videos; use make_video for sound")
    return path


def make_beats_wav(
    path: Path, seconds: float, hits: list[float], rate: int = 48000, bed: float = 0.02
) -> Path:
    """Write a 16-bit stereo WAV of percussive hits (decaying noise bursts) at `hits` seconds
    over a quiet low hum, so onset detectors have clear, known onsets to find."""
    count = round(seconds * rate)
    t = np.arange(count, dtype=np.float64) / rate
    signal = bed * np.sin(2 * math.pi * 110.0 * t)
    rng = np.random.default_rng(7)
    burst = rng.standard_normal(round(0.12 * rate)) * np.exp(-np.arange(round(0.12 * rate)) / 600)
    for hit in hits:
        start = round(hit * rate)
        piece = burst[: max(0, min(len(burst), count - start))]
        signal[start : start + len(piece)] += 0.7 * piece
    pcm = (np.clip(signal, -1, 1) * 32767).astype("<i2")
    return write_wav(path, np.repeat(pcm[:, None], 2, axis=1), rate)


def decoded_audio(path: Path) -> tuple[NDArray[np.float32], int]:
    """Every sample of the file's first audio stream as float32 (channels, samples), and
    the rate, decoded with PyAV alone."""
    chunks: list[NDArray[np.float32]] = []
    rate = 0
    with av.open(str(path)) as source:
        for frame in source.decode(audio=0):
            rate = frame.sample_rate
            samples = frame.to_ndarray().astype(np.float32)
            if not frame.format.is_planar:  # interleaved: (1, samples * channels)
                samples = samples.reshape(-1, len(frame.layout.channels)).T
            chunks.append(samples)
    return np.concatenate(chunks, axis=1), rate


def fitted(path: Path, size: tuple[int, int]) -> NDArray[np.uint8]:
    """A picture as a pinned frame of `size` shows it: centre-cropped to the output's shape
    and resized."""
    picture = np.asarray(Image.open(path).convert("RGB"))
    height, width = picture.shape[:2]
    keep_w = min(width, round(height * size[0] / size[1]))
    keep_h = min(height, round(width * size[1] / size[0]))
    left, top = (width - keep_w) // 2, (height - keep_h) // 2
    crop = picture[top : top + keep_h, left : left + keep_w]
    return cv2.resize(crop, size, interpolation=cv2.INTER_AREA)  # type: ignore[return-value]


def difference(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> float:
    """The mean absolute difference of two frames, per channel value (0-255)."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def make_bursts_wav(
    path: Path, seconds: float, freq: float, spans: list[tuple[float, float]], rate: int = 48000
) -> Path:
    """Write a 16-bit mono WAV that is silent but for a `freq` tone over each of `spans`
    (seconds), with 5 ms ramps: a stand-in for speech whose words can be told apart from
    music in the spectrum."""
    t = np.arange(round(seconds * rate), dtype=np.float64) / rate
    gate = np.zeros_like(t)
    ramp = 0.005
    for start, end in spans:
        gate = np.maximum(gate, np.clip(np.minimum(t - start, end - t) / ramp, 0.0, 1.0))
    pcm = (0.5 * gate * np.sin(2 * math.pi * freq * t) * 32767).astype("<i2")
    return write_wav(path, pcm, rate)


def true_peak_dbtp(samples: NDArray[np.float32]) -> float:
    """The true peak of (channels, samples) at 48 kHz in dBTP, measured as BS.1770-4 Annex 2
    does: 4x oversampled with its interpolation filter, the largest absolute value."""
    # the standard's filter table (its constants only: the measure itself is this one's)
    phases = [np.asarray(p) for p in TRUE_PEAK_PHASES]
    phases += [p[::-1] for p in phases]
    peak = max(
        float(np.abs(np.convolve(channel, phase)).max())
        for channel in samples.astype(np.float64)
        for phase in phases
    )
    return 20 * math.log10(max(peak, 1e-12))


def band_level(
    samples: NDArray[np.float32], rate: int, start: float, end: float, low: float, high: float
) -> float:
    """The level (dB, relative to full scale) of what lies between `low` and `high` Hz in
    seconds `start` to `end`, from the spectrum of the channels' mean."""
    piece = samples[:, round(start * rate) : round(end * rate)].mean(axis=0, dtype=np.float64)
    window = np.hanning(len(piece))
    power = np.abs(np.fft.rfft(piece * window)) ** 2
    freqs = np.fft.rfftfreq(len(piece), 1 / rate)
    inside = power[(freqs >= low) & (freqs <= high)].sum()
    # Parseval, with the window's power removed: a full-scale sine reads about -3 dB.
    mean_square = 2 * inside / (len(piece) * float((window**2).sum()))
    return 10 * math.log10(max(mean_square, 1e-20))
