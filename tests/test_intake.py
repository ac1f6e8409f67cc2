"""Reference intake against a corpus of hostile and boundary files, over a real HTTP server.

Each case goes through the real path a worker takes: the SSRF-safe fetcher over loopback,
sniffing, and the deep probe in a child process. Every file here is made by the tests.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from r2v.errors import ReferenceFetchFailed, ReferenceInvalid, TaskFailure
from r2v.protocol import CreateVideoRequest
from r2v.refs.fetch import Fetcher, FetchLimits
from r2v.refs.intake import Intake, References
from r2v.refs.probe import Prober
from tests.mediafiles import make_image, make_mp3, make_video, make_wav, pad_to
from tests.refserver import RefServer

FAST = "seedance-2.0-fast-reference-to-video"


def _png_header_only(width: int, height: int) -> bytes:
    # a PNG that claims a huge size: IHDR, a tiny IDAT and IEND
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RefServer]:
    root = tmp_path_factory.mktemp("corpus")
    make_image(root / "ok.jpg", 320, 240)
    make_video(root / "ok.mp4", 160, 120, seconds=2.0, audio=False)
    make_video(root / "with-audio.mp4", 160, 120, seconds=2.0, audio=True)
    make_wav(root / "ok.wav", seconds=2.0)
    # disguises: the name says one thing, the bytes another
    (root / "zip.jpg").write_bytes(b"PK\x03\x04" + b"\x14\x00" * 200)
    playlist = b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nhttp://169.254.169.254/x.ts\n"
    (root / "playlist.mp4").write_bytes(playlist + b"#EXT-X-ENDLIST\n")
    (root / "playlist-ftyp.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom\x00\x00\x00\x00" + playlist)
    (root / "page.png").write_bytes(b"<!DOCTYPE html><html><script>alert(1)</script></html>")
    (root / "id3-zip.mp3").write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"PK\x03\x04" * 500)
    (root / "riff-junk.webp").write_bytes(b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\xde\xad" * 64)
    (root / "riff-junk.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunk" + b"\x00" * 16)
    whole = (root / "with-audio.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(whole[: len(whole) // 3])
    (root / "bomb.png").write_bytes(_png_header_only(30000, 30000))
    jpeg = (root / "ok.jpg").read_bytes()
    (root / "garbled.jpg").write_bytes(jpeg[:200] + b"\x00" * 4000)
    make_video(root / "audio-free-video.mov", 160, 120, seconds=2.0, audio=False, container="mov")
    # an audio-only MP4 offered as a video
    make_video(root / "tmp.mp4", 64, 64, seconds=2.0, audio=True)
    _strip_video(root / "tmp.mp4", root / "audio-only.mp4")
    make_video(root / "huge-frame.mp4", 4112, 64, seconds=2.0, audio=False)
    # boundaries
    pad_to(make_image(root / "image-30mb.jpg", 320, 240), 30_000_000)
    pad_to(make_image(root / "image-30mb-plus-1.jpg", 320, 240), 30_000_001)
    pad_to(make_mp3(root / "audio-15mb.mp3", seconds=2.0), 15_000_000)
    pad_to(make_mp3(root / "audio-15mb-plus-1.mp3", seconds=2.0), 15_000_001)
    make_wav(root / "audio-15s.wav", seconds=15.0, rate=8000)
    make_wav(root / "audio-15.5s.wav", seconds=15.5, rate=8000)
    make_video(root / "v1s.mp4", 64, 64, seconds=1.0, audio=False)
    make_video(root / "v1.9s.mp4", 64, 64, seconds=1.9, audio=False)
    make_video(root / "v5s.mp4", 64, 64, seconds=5.0, audio=False)
    make_video(root / "v5.5s.mp4", 64, 64, seconds=5.5, audio=False)
    pad_to(make_video(root / "v-25mb-a.mp4", 64, 64, seconds=1.0, audio=False), 25_000_000)
    pad_to(make_video(root / "v-25mb-b.mp4", 64, 64, seconds=1.0, audio=False), 25_000_000)
    pad_to(make_video(root / "v-25mb-minus-1.mp4", 64, 64, seconds=1.0, audio=False), 24_999_999)
    with RefServer(root) as server:
        yield server


def _strip_video(source: Path, dest: Path) -> None:
    import av

    with av.open(str(source)) as src, av.open(str(dest), "w", format="mp4") as out:
        audio_in = src.streams.audio[0]
        audio_out = out.add_stream_from_template(audio_in)
        for packet in src.demux(audio_in):
            if packet.dts is None:
                continue
            packet.stream = audio_out
            out.mux(packet)


@pytest.fixture
def intake(corpus: RefServer) -> Intake:
    fetcher = Fetcher([corpus.host_port], FetchLimits(read_timeout=2.0, deadline=20.0))
    return Intake(fetcher, Prober(timeout_seconds=30.0))


def gather(intake: Intake, tmp_path: Path, corpus: RefServer, **lists: list[str]) -> References:
    fields: dict[str, Any] = {
        key: [corpus.file_url(name) for name in names] for key, names in lists.items()
    }
    if "audio_urls" in fields and not ("image_urls" in fields or "video_urls" in fields):
        fields["image_urls"] = [corpus.file_url("ok.jpg")]
    request = CreateVideoRequest(model=FAST, prompt="go", **fields)
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    return intake.gather(request, workspace, key_id="key_test")


HOSTILE = [
    ("image_urls", "zip.jpg", ReferenceInvalid, "not a supported format"),
    ("video_urls", "playlist.mp4", ReferenceInvalid, "not a supported format"),
    ("video_urls", "playlist-ftyp.mp4", ReferenceInvalid, "could not be read"),
    ("image_urls", "page.png", ReferenceInvalid, "not a supported format"),
    ("audio_urls", "id3-zip.mp3", ReferenceInvalid, ""),
    ("image_urls", "riff-junk.webp", ReferenceInvalid, "could not be read"),
    ("audio_urls", "riff-junk.wav", ReferenceInvalid, ""),
    ("video_urls", "truncated.mp4", ReferenceInvalid, ""),
    ("image_urls", "bomb.png", ReferenceInvalid, "megapixels"),
    ("image_urls", "garbled.jpg", ReferenceInvalid, "could not be read"),
    ("video_urls", "audio-only.mp4", ReferenceInvalid, "no video stream"),
    ("video_urls", "huge-frame.mp4", ReferenceInvalid, "4096"),
    ("video_urls", "ok.jpg", ReferenceInvalid, "an image"),
    ("image_urls", "ok.mp4", ReferenceInvalid, "a video"),
    ("audio_urls", "ok.mp4", ReferenceInvalid, "a video"),
    ("image_urls", "missing.jpg", ReferenceFetchFailed, "HTTP 404"),
]


@pytest.mark.parametrize(
    ("field", "name", "error", "fragment"), HOSTILE, ids=[case[1] for case in HOSTILE]
)
def test_hostile_files_are_refused_naming_the_item(
    intake: Intake,
    corpus: RefServer,
    tmp_path: Path,
    field: str,
    name: str,
    error: type[TaskFailure],
    fragment: str,
) -> None:
    with pytest.raises(error) as refused:
        gather(intake, tmp_path, corpus, **{field: [name]})
    assert refused.value.message.startswith(f"{field}[0]")
    assert fragment in refused.value.message


def test_a_good_set_of_references_is_probed(
    intake: Intake, corpus: RefServer, tmp_path: Path
) -> None:
    refs = gather(
        intake,
        tmp_path,
        corpus,
        image_urls=["ok.jpg"],
        video_urls=["with-audio.mp4", "audio-free-video.mov"],
        audio_urls=["ok.wav"],
    )
    assert [(r.info.width, r.info.height) for r in refs.images] == [(320, 240)]
    assert [r.info.has_audio for r in refs.videos] == [True, False]
    assert all(abs(r.info.duration - 2.0) < 0.05 for r in (*refs.videos, *refs.audios))


@pytest.mark.parametrize(
    ("lists", "passes", "fragment"),
    [
        ({"image_urls": ["image-30mb.jpg"]}, True, ""),
        ({"image_urls": ["image-30mb-plus-1.jpg"]}, False, "limit is 30 MB"),
        ({"audio_urls": ["audio-15mb.mp3"]}, True, ""),
        ({"audio_urls": ["audio-15mb-plus-1.mp3"]}, False, "limit is 15 MB"),
        ({"audio_urls": ["audio-15s.wav"]}, True, ""),
        ({"audio_urls": ["audio-15.5s.wav"]}, False, "at most 15 s"),
        ({"video_urls": ["v1s.mp4", "v1s.mp4"]}, True, ""),
        ({"video_urls": ["v1.9s.mp4"]}, False, "at least 2 s"),
        ({"video_urls": ["v5s.mp4", "v5s.mp4", "v5s.mp4"]}, True, ""),
        ({"video_urls": ["v5s.mp4", "v5s.mp4", "v5.5s.mp4"]}, False, "at most 15 s"),
        ({"video_urls": ["v-25mb-a.mp4", "v-25mb-minus-1.mp4"]}, True, ""),
        ({"video_urls": ["v-25mb-a.mp4", "v-25mb-b.mp4"]}, False, "under 50 MB"),
    ],
)
def test_limits_at_the_boundary(
    intake: Intake,
    corpus: RefServer,
    tmp_path: Path,
    lists: dict[str, list[str]],
    passes: bool,
    fragment: str,
) -> None:
    if passes:
        gather(intake, tmp_path, corpus, **lists)
        return
    with pytest.raises(ReferenceInvalid) as refused:
        gather(intake, tmp_path, corpus, **lists)
    assert fragment in refused.value.message
    assert refused.value.message.startswith(next(iter(lists)))


def test_a_probe_that_runs_out_of_memory_fails_cleanly(tmp_path: Path) -> None:
    from PIL import Image

    big = tmp_path / "big.png"
    Image.new("RGB", (7000, 7000)).save(big)  # small file, 147 MB once decoded
    with pytest.raises(ReferenceInvalid, match="could not be decoded"):
        Prober(memory_limit_bytes=300 * 1024**2).probe(big)
    assert Prober().probe(big).width == 7000


def test_a_probe_that_hangs_is_stopped(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "clip.mp4", 64, 64, seconds=1.0)
    with pytest.raises(ReferenceInvalid, match="longer than"):
        Prober(timeout_seconds=0.05).probe(clip)
