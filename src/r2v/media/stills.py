"""Pictures of a finished video: a thumbnail, the last frame, a sprite sheet of frames.

The video is a task's result, an H.264 MP4 the server stored. Each function decodes only
what its picture needs (the first frame; the last group of pictures; one forward pass
converting only the frames it keeps) and holds at most one full-size frame. The picture is
written beside `dest` under a unique temporary name and renamed over it, so a reader sees
a whole file or none, and a failure leaves nothing behind. A video that cannot be decoded
is a `GenerationFailed`, as a failure to encode it is (`r2v.media.encode`): it is the
server's own output that is broken, never the client's input.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Literal

import av
import av.container
import av.error
from PIL import Image

from r2v.errors import GenerationFailed
from r2v.media.decode import _set_threads
from r2v.media.formats import FORMATS, open_untrusted

ThumbnailFormat = Literal["jpeg", "webp"]

_QUALITY = 85  # JPEG and WebP: visually clean at a fraction of the size of higher settings
_PILLOW_FORMAT: dict[ThumbnailFormat, str] = {"jpeg": "JPEG", "webp": "WEBP"}


def thumbnail(video: Path, dest: Path, fmt: ThumbnailFormat = "jpeg") -> None:
    """Write the video's first frame, full size, to `dest` as JPEG or WebP (quality 85).

    Raises GenerationFailed when the video cannot be decoded or has no frames.
    """
    if fmt not in _PILLOW_FORMAT:
        raise ValueError(f"a thumbnail is 'jpeg' or 'webp', not {fmt!r}")
    with _opened(video, "a thumbnail") as (container, stream):
        first = next(iter(container.decode(stream)), None)
        if first is None:
            raise _no_frames("a thumbnail")
        picture = _picture(first)
    _save(picture, dest, _PILLOW_FORMAT[fmt], quality=_QUALITY)


def last_frame(video: Path, dest: Path) -> None:
    """Write the video's last frame (the decodable frame shown last), full size, as PNG.

    Decoding starts at the last keyframe, found by seeking to the end of the stream; when
    the header's duration or index leads the seek past every frame, it starts from the
    beginning instead. Raises GenerationFailed when the video cannot be decoded or has no
    frames.
    """
    what = "its last frame"
    with _opened(video, what) as (container, stream):
        # Frame threads, within decode's memory budget: x264 writes one slice a frame, so
        # FFmpeg's default slice threads would decode on one core.
        _set_threads(stream)
        end = _end_pts(stream)
        if end is not None:
            # Where the file cannot seek, decoding simply goes on from the start.
            with suppress(av.error.FFmpegError):
                container.seek(end, stream=stream, backward=True)
        last = _latest(container.decode(stream))
        picture = None if last is None else _picture(last)
    if picture is None:
        with _opened(video, what) as (container, stream):
            _set_threads(stream)
            last = _latest(container.decode(stream))
            if last is None:
                raise _no_frames(what)
            picture = _picture(last)
    _save(picture, dest, "PNG")


def sprite_sheet(
    video: Path, dest: Path, *, columns: int = 5, rows: int = 5, tile_width: int = 256
) -> None:
    """Write a JPEG grid of `columns` x `rows` frames spread evenly over the video.

    Tile i (row-major) is the frame i/n of the way through the video's n frames, scaled to
    `tile_width` wide with the video's aspect ratio. A video with fewer frames than cells
    gives one tile a frame; the sheet then has only the rows its tiles fill, and the cells
    left over in the last row are black. The sheet is always `columns * tile_width` wide.
    Raises GenerationFailed when the video cannot be decoded or has no frames.
    """
    if columns < 1 or rows < 1 or tile_width < 1:
        raise ValueError(
            f"columns, rows and tile_width must be at least 1, not {columns}, {rows}, {tile_width}"
        )
    what = "a sprite sheet"
    with _opened(video, what) as (container, stream):
        _set_threads(stream)
        total = _frame_count(video, stream, what)
        picks = _spread(total, columns * rows)
        width, height = stream.codec_context.width, stream.codec_context.height
        tile_height = max(1, round(tile_width * height / max(1, width)))
        tiles: list[Image.Image] = []
        # Frames come out in display order; only the picked ones are scaled and converted,
        # straight from YUV to the tile's size.
        for index, frame in enumerate(container.decode(stream)):
            if index == picks[len(tiles)]:
                tiles.append(_picture(frame, (tile_width, tile_height)))
                if len(tiles) == len(picks):
                    break
    if not tiles:
        raise _no_frames(what)
    used_rows = math.ceil(len(tiles) / columns)
    sheet = Image.new("RGB", (columns * tile_width, used_rows * tile_height))
    for place, tile in enumerate(tiles):
        row, column = divmod(place, columns)
        sheet.paste(tile, (column * tile_width, row * tile_height))
    _save(sheet, dest, "JPEG", quality=_QUALITY)


@contextmanager
def _opened(video: Path, what: str) -> Iterator[tuple[av.container.InputContainer, av.VideoStream]]:
    """The video's container and first video stream; FFmpeg failures within the block
    become GenerationFailed saying what could not be made."""
    try:
        with open_untrusted(video, FORMATS["mp4"]) as container:
            if not container.streams.video:
                raise GenerationFailed(
                    f"the finished video has no video stream, so {what} cannot be made"
                )
            yield container, container.streams.video[0]
    except av.error.FFmpegError as error:
        # FFmpeg's message names the file; the reason alone keeps server paths private.
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise GenerationFailed(
            f"the finished video could not be decoded ({reason}), so {what} cannot be made"
        ) from error


def _no_frames(what: str) -> GenerationFailed:
    return GenerationFailed(f"the finished video has no decodable frames, so {what} cannot be made")


def _picture(frame: av.VideoFrame, size: tuple[int, int] | None = None) -> Image.Image:
    """The frame in RGB at its own size, or scaled by FFmpeg straight from YUV to `size`."""
    scaling = {} if size is None else {"width": size[0], "height": size[1], "interpolation": "AREA"}
    picture: Image.Image = frame.to_image(**scaling)  # type: ignore[no-untyped-call]
    return picture


def _end_pts(stream: av.VideoStream) -> int | None:
    """The stream's end in its own time base, from the header, or None if it says nothing."""
    if stream.duration:
        return (stream.start_time or 0) + stream.duration
    return None


def _latest(frames: Iterable[av.VideoFrame]) -> av.VideoFrame | None:
    """The frame with the greatest pts, or the last one where a pts is missing."""
    latest = None
    for frame in frames:
        if latest is None or frame.pts is None or latest.pts is None or frame.pts >= latest.pts:
            latest = frame
    return latest


def _frame_count(video: Path, stream: av.VideoStream, what: str) -> int:
    """The stream's frames: the MP4 sample table's count, else packets counted in a pass
    that reads the file without decoding it (a fragmented MP4 has no table)."""
    if stream.frames:
        return int(stream.frames)
    with _opened(video, what) as (container, counted):
        return sum(1 for packet in container.demux(counted) if packet.size)


def _spread(total: int, wanted: int) -> list[int]:
    """`wanted` distinct frame indices evenly spread over `total` frames, the first first;
    every frame when there are no more than `wanted`."""
    if total <= wanted:
        return list(range(max(1, total)))
    return [index * total // wanted for index in range(wanted)]


def _save(picture: Image.Image, dest: Path, image_format: str, **options: int) -> None:
    """Write `picture` to `dest` whole or not at all: a unique name beside it, then a rename."""
    partial = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.partial")
    try:
        with partial.open("xb") as out:
            picture.save(out, format=image_format, **options)
        os.replace(partial, dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
