"""Reading an MP4's structure (ISO base media boxes) without decoding anything.

Enough to tell that a file someone else made is an MP4 holding a video track with samples,
and how long and large that track is: the boxes `moov/mvhd`, `trak/tkhd`, `mdia/mdhd`,
`mdia/hdlr` and `stbl/stsz`. No codec runs, so a hostile file can cost only the bounded
reads below; a file r2v passes on byte for byte (an upstream's video) needs no more.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from r2v.errors import ReferenceInvalid

MAX_MOOV_BYTES = 64 * 1024 * 1024
"""A `moov` box is a few hundred KB for minutes of video; larger is not an honest one."""
MAX_TOP_LEVEL_BOXES = 10_000


@dataclass(frozen=True)
class Mp4Summary:
    """What the boxes of an MP4 say about its (first) video track."""

    width: int
    height: int
    duration: float
    """Seconds of the video track (else of the whole movie)."""
    samples: int
    """Frames in the video track's sample table (0 for a fragmented file)."""


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, bytes]]:
    """(type, payload) of each box in `data[start:end]`; a box that overruns ends the walk."""
    end = len(data) if end is None else end
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            if offset + 16 > end:
                return
            (size,) = struct.unpack_from(">Q", data, offset + 8)
            header = 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            return
        yield kind, data[offset + header : offset + size]
        offset += size


def _read_moov(handle: BinaryIO, file_size: int) -> tuple[bytes | None, bool]:
    """The payload of the top-level `moov` box, and whether the file has `moof` fragments."""
    offset, fragmented = 0, False
    for _box in range(MAX_TOP_LEVEL_BOXES):
        if offset + 8 > file_size:
            break
        handle.seek(offset)
        head = handle.read(16)
        size, kind = struct.unpack_from(">I4s", head)
        header = 8
        if size == 1 and len(head) == 16:
            (size,) = struct.unpack_from(">Q", head, 8)
            header = 16
        elif size == 0:
            size = file_size - offset
        if size < header or offset + size > file_size:
            raise ReferenceInvalid("its boxes overrun the file (truncated or not an MP4)")
        if kind == b"moof":
            fragmented = True
        if kind == b"moov":
            if size > MAX_MOOV_BYTES:
                raise ReferenceInvalid("its moov box is implausibly large")
            handle.seek(offset + header)
            return handle.read(size - header), fragmented or _has_moof(handle, offset + size)
        offset += size
    return None, fragmented


def _has_moof(handle: BinaryIO, offset: int) -> bool:
    handle.seek(offset)
    head = handle.read(8)
    return len(head) == 8 and head[4:8] == b"moof"


def _video_track(moov: bytes) -> tuple[int, int, float, int] | None:
    """(width, height, seconds, samples) of the first track whose handler is `vide`."""
    for kind, trak in _boxes(moov):
        if kind != b"trak":
            continue
        track = dict(_boxes(trak))
        media = dict(_boxes(track.get(b"mdia", b"")))
        hdlr, mdhd, tkhd = media.get(b"hdlr"), media.get(b"mdhd"), track.get(b"tkhd")
        if hdlr is None or len(hdlr) < 12 or hdlr[8:12] != b"vide":
            continue
        width = height = 0
        if tkhd is not None and len(tkhd) >= 84:
            width, height = (v >> 16 for v in struct.unpack_from(">II", tkhd, len(tkhd) - 8))
        seconds = _duration(mdhd) if mdhd is not None else 0.0
        table = dict(_boxes(dict(_boxes(media.get(b"minf", b""))).get(b"stbl", b"")))
        stsz = table.get(b"stsz")
        samples = struct.unpack_from(">I", stsz, 8)[0] if stsz and len(stsz) >= 12 else 0
        return width, height, seconds, samples
    return None


def _duration(header: bytes) -> float:
    """Seconds from an `mvhd` or `mdhd` payload (version 0 or 1)."""
    if header and header[0] == 1 and len(header) >= 32:
        timescale, duration = struct.unpack_from(">IQ", header, 20)
    elif len(header) >= 20:
        timescale, duration = struct.unpack_from(">II", header, 12)
    else:
        return 0.0
    return duration / timescale if timescale else 0.0


def summarize(path: Path) -> Mp4Summary:
    """The video track of the MP4 at `path`; `ReferenceInvalid` saying why it is not one."""
    file_size = path.stat().st_size
    with path.open("rb") as handle:
        if handle.read(8)[4:8] != b"ftyp":
            raise ReferenceInvalid("it is not an MP4 file")
        moov, fragmented = _read_moov(handle, file_size)
    if moov is None:
        raise ReferenceInvalid("it has no moov box (truncated, or not an MP4)")
    track = _video_track(moov)
    if track is None:
        raise ReferenceInvalid("it has no video track")
    width, height, seconds, samples = track
    if samples == 0 and not fragmented:
        raise ReferenceInvalid("its video track holds no frames")
    if seconds <= 0:
        mvhd = dict(_boxes(moov)).get(b"mvhd")
        seconds = _duration(mvhd) if mvhd is not None else 0.0
    return Mp4Summary(width=width, height=height, duration=seconds, samples=samples)
