"""Decoding references into pixels and samples: images, video frames, audio.

Images go through Pillow, restricted to JPEG, PNG and WebP and to a pixel cap; video and
audio go through PyAV with the demuxer named from the sniffed format. Every failure is a
`ReferenceInvalid` whose message says what to send instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

import av
import av.error
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

from r2v.errors import ReferenceInvalid
from r2v.media.formats import PILLOW_FORMATS, open_untrusted, require

RGBFrame = NDArray[np.uint8]
"""An HxWx3 uint8 RGB picture, C-contiguous."""

MAX_IMAGE_PIXELS = 50_000_000
"""The default cap on a reference image's pixels (a 30 MB JPEG rarely exceeds 40 MP)."""

_ALPHA_BACKGROUND = (0, 0, 0)
# Transparent areas become black: the frame's pad and crossfades are dark too, so a cut-out
# reads as a subject on a dark stage instead of a white box.


def load_image(
    path: Path,
    *,
    max_pixels: int = MAX_IMAGE_PIXELS,
    draft_size: tuple[int, int] | None = None,
) -> RGBFrame:
    """Decode a JPEG, PNG or WebP into an HxWx3 uint8 RGB array.

    EXIF orientation is applied and alpha is composited onto black. `draft_size`
    (width, height) lets a large JPEG decode at a reduced scale that is still at least that
    big, which is much faster when the picture will be shrunk anyway.
    """
    try:
        with Image.open(path, formats=list(PILLOW_FORMATS)) as opened:
            width, height = opened.size
            if width * height > max_pixels:
                raise ReferenceInvalid(
                    f"{path.name} is {width}x{height}, over the limit of {max_pixels:,} pixels;"
                    " send a smaller image"
                )
            if draft_size is not None and opened.format == "JPEG":
                opened.draft("RGB", _draft_request(opened.size, draft_size, opened))
            picture = ImageOps.exif_transpose(opened)
            return _to_rgb(picture)
    except ReferenceInvalid:
        raise
    except Image.DecompressionBombError as error:
        raise ReferenceInvalid(f"{path.name} has too many pixels; send a smaller image") from error
    except (OSError, ValueError, SyntaxError) as error:
        # Pillow reports unknown, truncated and corrupt files as OSError (UnidentifiedImageError
        # is one), bad headers sometimes as ValueError or SyntaxError.
        raise ReferenceInvalid(
            f"{path.name} could not be decoded as a JPEG, PNG or WebP image ({error});"
            " send an intact image in one of those formats"
        ) from error


def _draft_request(
    size: tuple[int, int], wanted: tuple[int, int], image: Image.Image
) -> tuple[int, int]:
    # EXIF may rotate the picture by 90 degrees, swapping which side must stay large enough.
    orientation = image.getexif().get(0x0112, 1)
    if orientation in (5, 6, 7, 8):
        wanted = (wanted[1], wanted[0])
    scale = max(wanted[0] / size[0], wanted[1] / size[1])
    return (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))


def _to_rgb(picture: Image.Image) -> RGBFrame:
    if picture.mode in ("I", "I;16", "I;16B", "I;16L"):
        # 16-bit greyscale: Pillow's own conversion to RGB clips at 255 instead of scaling.
        grey = np.asarray(picture).astype(np.float32) * (255.0 / 65535.0)
        return np.ascontiguousarray(np.repeat(grey.round().astype(np.uint8)[..., None], 3, 2))
    if picture.mode == "P" and "transparency" in picture.info:
        picture = picture.convert("RGBA")
    if picture.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = picture.convert("RGBA")
        stage = Image.new("RGBA", rgba.size, (*_ALPHA_BACKGROUND, 255))
        picture = Image.alpha_composite(stage, rgba)
    array = np.asarray(picture.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(array)


class VideoFrameReader:
    """Reads a video's frames as RGB at requested, monotonically increasing timestamps.

    Decoding runs forward only and keeps one decoded frame in hand, so memory stays flat
    whatever the file's length. A timestamp between two frames gets the frame showing at
    that moment; one past the end gets the last frame. Display rotation is applied.
    """

    def __init__(self, path: Path) -> None:
        fmt = require(path, ("video",))
        self.path = path
        try:
            self._container = open_untrusted(path, fmt)
        except av.error.FFmpegError as error:
            raise ReferenceInvalid(_video_problem(path, error)) from error
        if not self._container.streams.video:
            self._container.close()
            raise ReferenceInvalid(f"{path.name} has no video stream; send an MP4 or MOV video")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        start, base = stream.start_time, stream.time_base
        self._origin = float(start * base) if start and base else 0.0
        self._frames: Iterator[av.VideoFrame] = self._container.decode(stream)
        self._current: av.VideoFrame | None = None
        self._next: av.VideoFrame | None = None
        self._exhausted = False
        self._last_time = -float("inf")
        self._cache: tuple[av.VideoFrame, RGBFrame] | None = None

    def frame_at(self, seconds: float) -> RGBFrame:
        """The RGB frame showing at `seconds` from the start; timestamps may not go back."""
        if seconds < self._last_time:
            raise ValueError("VideoFrameReader only reads forward")
        self._last_time = seconds
        if self._current is None:
            self._current = self._advance()
            if self._current is None:
                raise ReferenceInvalid(f"{self.path.name} has no decodable video frames")
            self._next = self._advance()
        while self._next is not None and self._time(self._next) <= seconds + 1e-6:
            self._current, self._next = self._next, self._advance()
        return self._rgb(self._current)

    def _advance(self) -> av.VideoFrame | None:
        if self._exhausted:
            return None
        try:
            return next(self._frames)
        except StopIteration:
            self._exhausted = True
            return None
        except av.error.FFmpegError as error:
            raise ReferenceInvalid(_video_problem(self.path, error)) from error

    def _time(self, frame: av.VideoFrame) -> float:
        return float(frame.time or 0.0) - self._origin

    def _rgb(self, frame: av.VideoFrame) -> RGBFrame:
        # Converting only the frames actually shown skips the colour conversion of the frames
        # a higher-rate source has in between.
        if self._cache is not None and self._cache[0] is frame:
            return self._cache[1]
        array: RGBFrame = frame.to_ndarray(format="rgb24")  # type: ignore[assignment]
        rotation = frame.rotation
        if rotation:
            array = np.ascontiguousarray(np.rot90(array, k=round(rotation / 90) % 4))
        self._cache = (frame, array)
        return array

    def close(self) -> None:
        """Release the decoder and the file."""
        self._cache = None
        self._current = self._next = None
        self._container.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def grey_frames(
    path: Path, longest_side: int, *, rate: float, max_seconds: float | None = None
) -> Iterator[tuple[float, NDArray[np.uint8]]]:
    """A video's frames as small greyscale pictures for motion analysis: (seconds, picture).

    About `rate` frames a second (never more than the video has), scaled by FFmpeg so the
    longer side is at most `longest_side`, display rotation applied. Scaling the luma plane
    in the decoder's own format is far cheaper than converting whole frames to RGB.
    """
    fmt = require(path, ("video",))
    try:
        with open_untrusted(path, fmt) as container:
            if not container.streams.video:
                raise ReferenceInvalid(f"{path.name} has no video stream; send an MP4 or MOV video")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            start, base = stream.start_time, stream.time_base
            origin = float(start * base) if start and base else 0.0
            due = 0.0
            for frame in container.decode(stream):
                seconds = float(frame.time or 0.0) - origin
                if max_seconds is not None and seconds > max_seconds:
                    break
                if seconds + 1e-6 < due:
                    continue
                due = seconds + 1.0 / rate
                scale = min(1.0, longest_side / max(frame.width, frame.height))
                width = max(2, round(frame.width * scale))
                height = max(2, round(frame.height * scale))
                grey = frame.reformat(width=width, height=height, format="gray")
                picture: NDArray[np.uint8] = grey.to_ndarray()  # type: ignore[assignment]
                if frame.rotation:
                    picture = np.rot90(picture, k=round(frame.rotation / 90) % 4)
                yield seconds, np.ascontiguousarray(picture)
    except av.error.FFmpegError as error:
        raise ReferenceInvalid(_video_problem(path, error)) from error


def decode_audio(
    path: Path, rate: int = 48000, channels: int = 2, *, max_seconds: float | None = None
) -> NDArray[np.float32]:
    """Decode the first audio stream of a WAV, MP3, MP4 or MOV file.

    Returns float32 samples shaped (channels, samples) at `rate`, resampled and remixed by
    FFmpeg. A file without audio gives zero samples. `max_seconds` stops decoding early.
    """
    fmt = require(path, ("audio", "video"))
    layout = {1: "mono", 2: "stereo"}.get(channels)
    if layout is None:
        raise ValueError("decode_audio gives mono or stereo")
    limit = None if max_seconds is None else round(max_seconds * rate)
    chunks: list[NDArray[np.float32]] = []
    total = 0
    try:
        with open_untrusted(path, fmt) as container:
            if not container.streams.audio:
                return np.zeros((channels, 0), dtype=np.float32)
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
            for frame in container.decode(container.streams.audio[0]):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().astype(np.float32, copy=False))
                    total += out.samples
                if limit is not None and total >= limit:
                    break
            else:
                for out in resampler.resample(None):
                    chunks.append(out.to_ndarray().astype(np.float32, copy=False))
    except av.error.FFmpegError as error:
        raise ReferenceInvalid(
            f"the audio of {path.name} could not be decoded ({error}); "
            "send an intact MP3 or WAV file"
        ) from error
    if not chunks:
        return np.zeros((channels, 0), dtype=np.float32)
    samples = np.concatenate(chunks, axis=1)
    return samples if limit is None else samples[:, :limit]


def _video_problem(path: Path, error: Exception) -> str:
    return (
        f"{path.name} could not be decoded as a video ({error}); "
        "send an intact MP4 or MOV file (H.264 is the safest choice)"
    )
