"""r2v.media.stills against real MP4s whose frames are solid colours along a ramp."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from r2v.errors import GenerationFailed
from r2v.media.encode import Mp4Writer
from r2v.media.stills import last_frame, sprite_sheet, thumbnail
from tests.mediafiles import decoded_frames, make_video

WIDTH, HEIGHT = 96, 54
FRAMES = 48  # two seconds at 24 fps: B-frames, and a second keyframe to seek to

Colour = tuple[int, int, int]


def ramp(index: int, count: int) -> Colour:
    """Frame `index`'s colour: red rises and blue falls by about 4 levels a frame."""
    share = index / max(1, count - 1)
    return (round(20 + 200 * share), 120, round(220 - 200 * share))


def write_ramp(path: Path, count: int, size: tuple[int, int] = (WIDTH, HEIGHT)) -> Path:
    """An MP4 from the server's own encoder whose frame i is solid `ramp(i, count)`; the
    standard preset writes B-frames, so frames are decoded out of order."""
    width, height = size
    with Mp4Writer(path, width, height, preset="standard") as writer:
        for index in range(count):
            writer.write(np.full((height, width, 3), ramp(index, count), dtype=np.uint8))
    return path


def write_fragmented(path: Path, count: int) -> Path:
    """A fragmented MP4 of the same ramp: its moov has no sample table to count frames by."""
    options = {"movflags": "frag_keyframe+empty_moov"}
    with av.open(str(path), "w", format="mp4", options=options) as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": "12"}
        for index in range(count):
            picture = np.full((HEIGHT, WIDTH, 3), ramp(index, count), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, 24)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def mean(picture: Image.Image | NDArray[np.uint8]) -> NDArray[np.float64]:
    pixels = np.asarray(picture.convert("RGB") if isinstance(picture, Image.Image) else picture)
    average: NDArray[np.float64] = pixels.reshape(-1, 3).mean(axis=0)
    return average


def assert_colour(picture: Image.Image | NDArray[np.uint8], colour: Colour, tol: float) -> None:
    found = mean(picture)
    assert np.abs(found - np.array(colour)).max() <= tol, f"{found.round(1)} is not {colour}"


def tiles(sheet: Image.Image, width: int, height: int) -> list[Image.Image]:
    """The sheet's cells, row-major, each cropped a pixel in from its edges (JPEG blocks)."""
    return [
        sheet.crop((x + 1, y + 1, x + width - 1, y + height - 1))
        for y in range(0, sheet.height, height)
        for x in range(0, sheet.width, width)
    ]


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("stills")
    whole = make_video(root / "plain.mp4", WIDTH, HEIGHT, seconds=1.0, audio=False)
    data = whole.read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])  # its moov is at the end
    (root / "random.mp4").write_bytes(np.random.default_rng(7).bytes(4096))
    (root / "empty.mp4").write_bytes(b"")
    ramped = write_ramp(root / "ramp.mp4", FRAMES)
    head = ramped.read_bytes()[:300]  # +faststart: the moov is cut short instead
    (root / "headonly.mp4").write_bytes(head)
    return {
        "ramp": ramped,
        "long": write_ramp(root / "long.mp4", 5 * 24, size=(64, 48)),
        "short": write_ramp(root / "short.mp4", 7),
        "fragmented": write_fragmented(root / "fragmented.mp4", FRAMES),
        "truncated": root / "truncated.mp4",
        "headonly": root / "headonly.mp4",
        "random": root / "random.mp4",
        "empty": root / "empty.mp4",
    }


# --- thumbnail ---------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "pillow"), [("jpeg", "JPEG"), ("webp", "WEBP")])
def test_thumbnail_is_the_first_frame_full_size(
    videos: dict[str, Path], tmp_path: Path, fmt: str, pillow: str
) -> None:
    dest = tmp_path / f"thumb.{fmt}"
    thumbnail(videos["ramp"], dest, fmt)  # type: ignore[arg-type]
    with Image.open(dest) as picture:
        assert picture.format == pillow
        assert picture.size == (WIDTH, HEIGHT)
        assert_colour(picture, ramp(0, FRAMES), tol=4)
    assert sorted(tmp_path.iterdir()) == [dest]


def test_thumbnail_refuses_an_unknown_format(videos: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="jpeg"):
        thumbnail(videos["ramp"], tmp_path / "thumb.gif", "gif")  # type: ignore[arg-type]


# --- last frame --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ramp", "long", "fragmented"])
def test_last_frame_is_exactly_the_last_decoded_frame(
    videos: dict[str, Path], tmp_path: Path, name: str
) -> None:
    dest = tmp_path / "last.png"
    last_frame(videos[name], dest)
    expected = decoded_frames(videos[name])[-1]  # an independent decode, start to end
    with Image.open(dest) as picture:
        assert picture.format == "PNG"
        pixels = np.asarray(picture.convert("RGB"))
    assert pixels.shape == expected.shape
    assert np.array_equal(pixels, expected)
    count = 5 * 24 if name == "long" else FRAMES
    assert_colour(pixels, ramp(count - 1, count), tol=3)  # and not its neighbour (4 levels)


# --- sprite sheet ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ramp", "fragmented"])
def test_sprite_sheet_tiles_follow_the_video_in_order(
    videos: dict[str, Path], tmp_path: Path, name: str
) -> None:
    dest = tmp_path / "sprite.jpg"
    sprite_sheet(videos[name], dest, columns=5, rows=4, tile_width=32)
    tile_height = round(32 * HEIGHT / WIDTH)
    with Image.open(dest) as sheet:
        assert sheet.format == "JPEG"
        assert sheet.size == (5 * 32, 4 * tile_height)
        cells = tiles(sheet, 32, tile_height)
    assert len(cells) == 20
    reds = [mean(cell)[0] for cell in cells]
    assert all(a < b for a, b in zip(reds, reds[1:], strict=False))
    for place, cell in enumerate(cells):  # tile i is frame i * 48 // 20
        assert_colour(cell, ramp(place * FRAMES // 20, FRAMES), tol=6)
    assert sorted(tmp_path.iterdir()) == [dest]


def test_a_video_shorter_than_the_grid_gives_a_tile_a_frame(
    videos: dict[str, Path], tmp_path: Path
) -> None:
    dest = tmp_path / "sprite.jpg"
    sprite_sheet(videos["short"], dest)  # 7 frames into 5 x 5: two rows, three cells black
    tile_height = round(256 * HEIGHT / WIDTH)
    with Image.open(dest) as sheet:
        assert sheet.size == (5 * 256, 2 * tile_height)
        cells = tiles(sheet, 256, tile_height)
    for index, cell in enumerate(cells[:7]):
        assert_colour(cell, ramp(index, 7), tol=6)
    for cell in cells[7:]:
        assert mean(cell).max() <= 2


def test_sprite_sheet_refuses_an_empty_grid(videos: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="columns"):
        sprite_sheet(videos["ramp"], tmp_path / "sprite.jpg", columns=0)


# --- failures ----------------------------------------------------------------------------

MAKERS: dict[str, Callable[[Path, Path], None]] = {
    "thumbnail": thumbnail,
    "last_frame": last_frame,
    "sprite_sheet": sprite_sheet,
}


@pytest.mark.parametrize("maker", MAKERS)
@pytest.mark.parametrize("name", ["random", "empty", "truncated", "headonly"])
def test_an_undecodable_video_leaves_no_file(
    videos: dict[str, Path], tmp_path: Path, maker: str, name: str
) -> None:
    dest = tmp_path / "still"
    with pytest.raises(GenerationFailed, match="the finished video") as caught:
        MAKERS[maker](videos[name], dest)
    assert str(videos[name]) not in caught.value.message  # no server paths in the message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("maker", MAKERS)
def test_a_failure_keeps_the_previous_picture(
    videos: dict[str, Path], tmp_path: Path, maker: str
) -> None:
    dest = tmp_path / "still"
    dest.write_bytes(b"the picture made before")
    with pytest.raises(GenerationFailed):
        MAKERS[maker](videos["truncated"], dest)
    assert dest.read_bytes() == b"the picture made before"
    assert list(tmp_path.iterdir()) == [dest]


def test_an_audio_only_mp4_has_no_pictures(tmp_path: Path) -> None:
    source = tmp_path / "sound.mp4"
    with av.open(str(source), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=48000, layout="stereo")
        frame = av.AudioFrame.from_ndarray(
            np.zeros((2, 1024), dtype=np.float32), format="fltp", layout="stereo"
        )
        frame.sample_rate, frame.pts = 48000, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode())
    for make in MAKERS.values():
        with pytest.raises(GenerationFailed, match="no video stream"):
            make(source, tmp_path / "still")
    assert list(tmp_path.iterdir()) == [source]
