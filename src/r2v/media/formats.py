"""The allow-listed reference formats, recognised by their first bytes.

Only these formats are ever decoded. Naming the demuxer explicitly when a file is opened
(instead of letting FFmpeg guess) keeps playlist-style demuxers such as HLS or concat,
which can open other files or URLs, out of reach of untrusted input.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import av.container

from r2v.errors import ReferenceInvalid

FormatName = Literal["jpeg", "png", "webp", "mp4", "mp3", "wav"]
MediaKind = Literal["image", "video", "audio"]


@dataclass(frozen=True)
class Format:
    """One allow-listed format: what it is and how to open it."""

    name: FormatName
    kind: MediaKind
    demuxer: str | None
    """The FFmpeg demuxer to force, or None for images only Pillow decodes."""
    pillow: str | None = None
    """Pillow's name of the format, for images."""


FORMATS: dict[FormatName, Format] = {
    "jpeg": Format("jpeg", "image", None, "JPEG"),
    "png": Format("png", "image", None, "PNG"),
    # FFmpeg decodes a large still WebP with less memory than Pillow (see `load_image`).
    "webp": Format("webp", "image", "webp_pipe", "WEBP"),
    # MP4 and MOV share one demuxer; a reference video may hold audio too.
    "mp4": Format("mp4", "video", "mov"),
    "mp3": Format("mp3", "audio", "mp3"),
    "wav": Format("wav", "audio", "wav"),
}

PILLOW_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP")

# Top-level atoms an ISO-BMFF / QuickTime file may start with.
_MP4_ATOMS = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot")

_SNIFF_BYTES = 64

# Demuxer options for untrusted files: read the one local file and nothing it points at.
# `protocol_whitelist` stops any nested open (HLS segments, concat lists, data references)
# from using anything but plain files, and MOV data references stay off.
_UNTRUSTED_OPTIONS = {"protocol_whitelist": "file", "enable_drefs": "0", "use_absolute_path": "0"}


def sniff_bytes(head: bytes) -> Format | None:
    """The allow-listed format the leading bytes of a file belong to, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return FORMATS["jpeg"]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return FORMATS["png"]
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return FORMATS["webp"]
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return FORMATS["wav"]
    if head[4:8] in _MP4_ATOMS:
        return FORMATS["mp4"]
    if head.startswith(b"ID3"):
        return FORMATS["mp3"]
    # A bare MPEG audio frame: 11 sync bits, then a layer field that is not "reserved".
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0 and head[1] & 0x06:
        return FORMATS["mp3"]
    return None


def sniff(path: Path) -> Format | None:
    """The allow-listed format of the file at `path`, judged by content, never by name."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError as error:
        raise ReferenceInvalid(f"{path.name} could not be read: {error.strerror}") from error
    return sniff_bytes(head)


def require(path: Path, kinds: tuple[MediaKind, ...]) -> Format:
    """The file's format, or ReferenceInvalid saying which formats are accepted."""
    found = sniff(path)
    if found is None or found.kind not in kinds:
        accepted = ", ".join(fmt.name.upper() for fmt in FORMATS.values() if fmt.kind in kinds)
        what = f"a {found.kind} ({found.name.upper()})" if found else "not a supported format"
        raise ReferenceInvalid(f"{path.name} is {what}; send one of: {accepted}")
    return found


def open_untrusted(path: Path, fmt: Format) -> av.container.InputContainer:
    """Open an allow-listed audio or video file with its own demuxer and no nested opens."""
    if fmt.demuxer is None:
        raise ValueError(f"{fmt.name} is not opened with FFmpeg")
    return av.open(str(path), "r", format=fmt.demuxer, options=_UNTRUSTED_OPTIONS)
