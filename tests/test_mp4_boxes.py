"""Reading an MP4's boxes without decoding: real files, and files made to mislead."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from r2v.errors import ReferenceInvalid
from r2v.media.mp4 import summarize
from tests.mediafiles import make_video


def box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _nest(depth: int) -> bytes:
    inner = box(b"stsz", b"\0" * 12)
    for _ in range(depth):
        inner = box(b"trak", inner)
    return inner


def test_a_real_mp4_and_mov_are_summarized(tmp_path: Path, media_dir: Path) -> None:
    mp4 = summarize(media_dir / "clip.mp4")
    assert (mp4.width, mp4.height, mp4.samples) == (320, 240, 48)
    assert mp4.duration == pytest.approx(2.0, abs=0.05)
    mov = summarize(media_dir / "clip.mov")
    assert (mov.width, mov.height, mov.samples) == (240, 320, 48)
    # moov after mdat (no faststart) is found by walking the top-level boxes
    late = make_video(tmp_path / "late.mp4", 64, 48, seconds=1.0, audio=False)
    data = late.read_bytes()
    assert data.find(b"moov") > data.find(b"mdat")
    assert summarize(late).samples == 24


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "not an MP4"),
        ("empty", b"", "not an MP4"),
        ("ftyp only", box(b"ftyp", b"isom\x00\x00\x02\x00"), "no moov"),
        ("overrun", box(b"ftyp", b"isom") + struct.pack(">I", 10**9) + b"mdat", "overrun"),
        ("huge moov", box(b"ftyp", b"isom") + struct.pack(">I", 2**31) + b"moov" + b"\0" * 64,
         "overrun"),
        ("tiny box", box(b"ftyp", b"isom") + struct.pack(">I", 3) + b"free", "overrun"),
        ("no tracks", box(b"ftyp", b"isom") + box(b"moov", box(b"mvhd", b"\0" * 100)),
         "no video track"),
        ("audio only", box(b"ftyp", b"isom") + box(b"moov", box(b"trak", box(b"mdia",
         box(b"hdlr", b"\0" * 8 + b"soun" + b"\0" * 12)))), "no video track"),
        ("no frames", box(b"ftyp", b"isom") + box(b"moov", box(b"trak", box(b"mdia",
         box(b"hdlr", b"\0" * 8 + b"vide" + b"\0" * 12)))), "no frames"),
        ("deep nesting", box(b"ftyp", b"isom") + box(b"moov", _nest(200)), "no video track"),
    ],
)  # fmt: skip
def test_files_that_are_not_a_playable_mp4_are_refused(
    tmp_path: Path, name: str, content: bytes, why: str
) -> None:
    path = tmp_path / "x.mp4"
    path.write_bytes(content)
    with pytest.raises(ReferenceInvalid) as caught:
        summarize(path)
    assert why in caught.value.message, name


def test_a_cut_off_download_is_refused(tmp_path: Path, media_dir: Path) -> None:
    data = (media_dir / "clip.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: data.find(b"moov") + 100])  # the moov box runs past the end
    with pytest.raises(ReferenceInvalid):
        summarize(cut)
