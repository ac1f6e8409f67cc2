"""Decoding references into pixels and samples: images, video frames, audio.

Images go through Pillow (large still WebPs through FFmpeg), restricted to JPEG, PNG and
WebP and to a pixel cap; video and audio go through PyAV with the demuxer named from the
sniffed format. Pictures and video frames come out no larger than the output they are
fitted into needs, reduced as they are decoded, so a render's memory does not grow with
its references' size. Every failure is a `ReferenceInvalid` whose message says what to
send instead.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Self, cast

import av
import av.error
import cv2
import numpy as np
from av.video.reformatter import Interpolation
from numpy.typing import NDArray
from PIL import Image

from r2v.errors import ReferenceInvalid
from r2v.media.fit import fit_scale
from r2v.media.formats import FORMATS, PILLOW_FORMATS, open_untrusted, require

RGBFrame = NDArray[np.uint8]
"""An HxWx3 uint8 RGB picture, C-contiguous."""

MAX_IMAGE_PIXELS = 50_000_000
"""The default cap on a reference image's pixels (a 30 MB JPEG rarely exceeds 40 MP)."""

# Transparent areas become black: the frame's pad and crossfades are dark too, so a cut-out
# reads as a subject on a dark stage instead of a white box. Premultiplied alpha ("RGBa")
# is exactly that: its colour is the picture over black, and it averages without halos.
_ALPHA_MODE = "RGBa"
_STRIP_PIXELS = 4_000_000
"""Source pixels converted at a time when a picture changes mode on its way to RGB."""
# Area averaging, with swscale's exact rounding and full-resolution chroma: without them
# its colours land a level or two darker than libwebp's own conversion.
_WEBP_SCALING = int(
    Interpolation.AREA | Interpolation.ACCURATE_RND
    | Interpolation.FULL_CHR_H_INT | Interpolation.FULL_CHR_H_INP
)  # fmt: skip
_LARGE_PIXELS = 8_000_000
"""Pictures larger than this are decoded on a trimmed heap (`_trim_heap`)."""
_DECODER_PIXELS = 16_000_000
"""Pixels of frames in flight a video decoder's frame threads share (about 48 MB)."""
_FFMPEG_MAX_AUTO_THREADS = 16  # libavcodec's cap on the threads it starts by itself
_ORIENTATION = 0x0112
_TRANSPOSES = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def load_image(
    path: Path,
    *,
    max_pixels: int = MAX_IMAGE_PIXELS,
    draft_size: tuple[int, int] | None = None,
) -> RGBFrame:
    """Decode a JPEG, PNG or WebP into an HxWx3 uint8 RGB array.

    EXIF orientation is applied and alpha is composited onto black. `draft_size` (width,
    height) is the size the picture will be fitted into (`fit_frame`): a larger picture
    comes out shrunk by a whole factor, to no less than that fit draws it at. A JPEG decodes
    at the reduced scale directly and a still WebP is scaled by FFmpeg as it is converted;
    a PNG decodes once at full size and is reduced at once. Memory holds the full-size
    picture at most once, never a converted copy of it.
    """
    try:
        with Image.open(path, formats=list(PILLOW_FORMATS)) as opened:
            width, height = opened.size
            if width * height > max_pixels:
                raise ReferenceInvalid(
                    f"{path.name} is {width}x{height}, over the limit of {max_pixels:,} pixels;"
                    " send a smaller image"
                )
            if width * height > _LARGE_PIXELS:
                _trim_heap()
            # A PNG's EXIF may follow its pixels, so this can decode the whole picture.
            orientation = opened.getexif().get(_ORIENTATION, 1)
            scale = 1.0
            if draft_size is not None:
                shown = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
                scale = min(1.0, fit_scale(shown, draft_size))
            picture = _decode_reduced(opened, path, (width * scale, height * scale))
            if picture is not opened:
                opened.close()  # frees the full-size picture now, not when the file closes
            method = _TRANSPOSES.get(orientation)
            return _to_rgb(picture if method is None else picture.transpose(method))
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


def _decode_reduced(opened: Image.Image, path: Path, needed: tuple[float, float]) -> Image.Image:
    """The picture decoded and box-averaged by the largest whole factor that keeps it at
    least `needed` (width, height, before EXIF rotation), in a mode `_to_rgb` takes."""
    width, height = opened.size
    if needed[0] < width and opened.format in ("JPEG", "MPO"):  # MPO: a multi-picture JPEG
        # libjpeg scales by 1/2, 1/4 or 1/8 while decoding, never below the size asked for.
        opened.draft("RGB", (math.ceil(needed[0]), math.ceil(needed[1])))
    factor = max(1, math.floor(min(opened.width / needed[0], opened.height / needed[1])))
    if factor > 1 and opened.format == "WEBP":
        # Pillow decodes WebP through libwebp's animation decoder: two full-size canvases
        # and a copy of the frame. FFmpeg decodes a still into one YUV picture and scales
        # it while converting; it cannot read animations, which Pillow then decodes.
        small = (-(-width // factor), -(-height // factor))
        still = _webp_still(path, small)
        if still is not None:
            return still
    opened.load()
    return _reduced(opened, factor)


def _reduced(picture: Image.Image, factor: int) -> Image.Image:
    """`picture` box-averaged `factor` times smaller (rounding up) in its working mode: 8-bit
    grey, RGB, premultiplied RGBA, or 32-bit integers for 16-bit grey. A change of mode
    runs a strip at a time, so no full-size converted copy is made."""
    mode = _working_mode(picture)
    if picture.mode == mode:
        return picture.reduce(factor) if factor > 1 else picture
    width, height = picture.size
    out = Image.new(mode, (-(-width // factor), -(-height // factor)))
    rows = max(1, _STRIP_PIXELS // (width * factor)) * factor
    for top in range(0, height, rows):
        strip = picture.crop((0, top, width, min(height, top + rows)))
        if mode == _ALPHA_MODE and strip.mode != "RGBA":
            strip = strip.convert("RGBA")  # palette transparency, grey with alpha
        strip = strip.convert(mode)
        out.paste(strip.reduce(factor) if factor > 1 else strip, (0, top // factor))
    return out


def _working_mode(picture: Image.Image) -> str:
    if picture.mode.startswith("I"):  # 16-bit greyscale: I;16, I;16B, I;16L, or I
        return "I"
    if "A" in picture.mode or (picture.mode == "P" and "transparency" in picture.info):
        return _ALPHA_MODE
    return "L" if picture.mode in ("1", "L") else "RGB"


def _webp_still(path: Path, size: tuple[int, int]) -> Image.Image | None:
    """A still WebP decoded by FFmpeg and scaled to `size`, or None if FFmpeg cannot."""
    try:
        with open_untrusted(path, FORMATS["webp"]) as container:
            frame = next(container.decode(video=0))
            alpha = len(frame.format.components) == 4  # yuva420p, or argb when lossless
            small = frame.reformat(
                width=size[0], height=size[1], format="rgba" if alpha else "rgb24",
                interpolation=_WEBP_SCALING,
            )  # fmt: skip
            array: NDArray[np.uint8] = small.to_ndarray()  # type: ignore[assignment]
    except (av.error.FFmpegError, StopIteration, IndexError):
        return None
    if not alpha:
        return Image.fromarray(array, "RGB")
    return Image.fromarray(array, "RGBA").convert(_ALPHA_MODE)


def _to_rgb(picture: Image.Image) -> RGBFrame:
    """A picture in a working mode as a C-contiguous uint8 RGB array."""
    if picture.mode == "I":
        # 16-bit greyscale: Pillow's own conversion to RGB clips at 255 instead of scaling.
        grey = np.asarray(picture).astype(np.float32) * (255.0 / 65535.0)
        return np.ascontiguousarray(np.repeat(grey.round().astype(np.uint8)[..., None], 3, 2))
    if picture.mode == _ALPHA_MODE:
        # Premultiplied colour is the picture composited over black: drop the alpha.
        return np.ascontiguousarray(np.asarray(picture)[..., :3], dtype=np.uint8)
    rgb = picture if picture.mode == "RGB" else picture.convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb), dtype=np.uint8)


class VideoFrameReader:
    """Reads a video's frames as RGB at requested, monotonically increasing timestamps.

    Decoding runs forward only and keeps one decoded frame in hand, so memory stays flat
    whatever the file's length. A timestamp between two frames gets the frame showing at
    that moment (or, from `blended_at`, a mix of the two); one past the end gets the last
    frame. Display rotation is applied.
    With `draft_size` (width, height), the size frames will be fitted into (`fit_frame`),
    larger frames are scaled down while being converted to RGB, to no less than that fit
    draws them at: a 4096x4096 frame never exists in RGB.
    """

    def __init__(self, path: Path, *, draft_size: tuple[int, int] | None = None) -> None:
        fmt = require(path, ("video",))
        self.path = path
        self._draft_size = draft_size
        try:
            self._container = open_untrusted(path, fmt)
        except av.error.FFmpegError as error:
            raise ReferenceInvalid(_video_problem(path, error)) from error
        if not self._container.streams.video:
            self._container.close()
            raise ReferenceInvalid(f"{path.name} has no video stream; send an MP4 or MOV video")
        stream = self._container.streams.video[0]
        _set_threads(stream)
        start, base = stream.start_time, stream.time_base
        self._origin = float(start * base) if start and base else 0.0
        self._frames: Iterator[av.VideoFrame] = self._container.decode(stream)
        self._started = self._exhausted = False
        # The frame showing, still decoded until it is asked for (a higher-rate source's
        # frames in between are never converted), and the next one. Converted, only the
        # RGB picture is kept: a decoded frame holds one of the decoder's full-size buffers.
        self._pending: av.VideoFrame | None = None
        self._shown: RGBFrame | None = None
        self._shown_time = 0.0
        self._next: av.VideoFrame | None = None
        self._next_rgb: RGBFrame | None = None  # `_next` converted, once blending asked for it
        self._pending_rgb: RGBFrame | None = None
        self._last_time = -float("inf")

    def frame_at(self, seconds: float) -> RGBFrame:
        """The RGB frame showing at `seconds` from the start; timestamps may not go back."""
        if seconds < self._last_time:
            raise ValueError("VideoFrameReader only reads forward")
        self._last_time = seconds
        if not self._started:
            self._started = True
            self._pending = self._advance()
            if self._pending is None:
                raise ReferenceInvalid(f"{self.path.name} has no decodable video frames")
            self._next = self._advance()
        while self._next is not None and self._time(self._next) <= seconds + 1e-6:
            self._pending, self._next = self._next, self._advance()
            self._pending_rgb, self._next_rgb = self._next_rgb, None
        if self._pending is not None:
            self._shown_time = self._time(self._pending)
            converted = self._pending_rgb
            self._shown = converted if converted is not None else self._rgb(self._pending)
            self._pending = self._pending_rgb = None
        if self._shown is None:
            raise ReferenceInvalid(f"{self.path.name} has no decodable video frames")
        return self._shown

    def blended_at(self, seconds: float) -> RGBFrame:
        """The moment `seconds` as a mix of the frames before and after it, each weighted
        by how near it lies; the last frame past the end. Timestamps may not go back.

        A clip played slower or faster than it was filmed then moves on every frame, as
        it would have been filmed at that speed, instead of repeating or skipping frames.
        """
        shown = self.frame_at(seconds)
        following = self._next
        if following is None:
            return shown
        span = self._time(following) - self._shown_time
        weight = (seconds - self._shown_time) / span if span > 0 else 0.0
        if weight < 1 / 512:  # below half a level of the 8-bit result
            return shown
        if self._next_rgb is None:
            self._next_rgb = self._rgb(following)
        if self._next_rgb.shape != shown.shape:
            return shown
        return cv2.addWeighted(shown, 1.0 - weight, self._next_rgb, weight, 0.0)  # type: ignore[return-value]

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
        turns = round(frame.rotation / 90) % 4
        size = self._scaled_size(frame.width, frame.height, turned=turns % 2 == 1)
        if size is None:
            array: RGBFrame = frame.to_ndarray(format="rgb24")  # type: ignore[assignment]
        else:
            scaled = frame.reformat(
                width=size[0], height=size[1], format="rgb24", interpolation="AREA"
            )
            array = scaled.to_ndarray()  # type: ignore[assignment]
        if turns:
            array = np.ascontiguousarray(np.rot90(array, k=turns))
        return array

    def _scaled_size(self, width: int, height: int, *, turned: bool) -> tuple[int, int] | None:
        """The (width, height) to convert a frame at, or None to keep its own."""
        if self._draft_size is None:
            return None
        scale = fit_scale((height, width) if turned else (width, height), self._draft_size)
        if scale >= 1.0:
            return None
        return (math.ceil(width * scale), math.ceil(height * scale))

    def close(self) -> None:
        """Release the decoder and the file."""
        self._pending = self._next = self._shown = self._next_rgb = self._pending_rgb = None
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
            _set_threads(stream)
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


def _trim_heap() -> None:
    """Hand the memory glibc keeps in freed blocks back to the system (elsewhere a no-op).

    Buffers under glibc's adaptive mmap threshold (it rises to 32 MB as large buffers are
    freed: frames, plates, decoded pictures) are freed into its heaps, which it shrinks
    only from the top; tens of megabytes of holes would stay resident beneath the next
    large decode. Trimming costs about a millisecond.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return cast("Callable[[int], int]", ctypes.CDLL(None).malloc_trim)
    except (OSError, AttributeError):  # not glibc
        return None


def _set_threads(stream: av.VideoStream) -> None:
    """Let the decoder use threads as far as memory allows.

    Frame threads decode several frames at once and each holds a frame or two: fine for
    HD, but FFmpeg starts one per core plus one, so 4096x4096 frames on 16 cores would hold
    some 800 MB. Large frames get fewer frame threads, and the largest slice threads only,
    which hold no frames of their own.
    """
    pixels = max(1, stream.codec_context.width * stream.codec_context.height)
    threads = _DECODER_PIXELS // pixels
    if threads >= min((os.cpu_count() or 1) + 1, _FFMPEG_MAX_AUTO_THREADS):
        stream.thread_type = "AUTO"  # FFmpeg's own choice fits the budget
    elif threads >= 2:
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
    else:
        stream.thread_type = "SLICE"


def _video_problem(path: Path, error: Exception) -> str:
    return (
        f"{path.name} could not be decoded as a video ({error}); "
        "send an intact MP4 or MOV file (H.264 is the safest choice)"
    )
