"""r2v.media against real files: sniffing, probing, decoding, fitting and encoding."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from r2v.errors import GenerationFailed, ReferenceInvalid
from r2v.media.aac import EncodePreset, encode_aac
from r2v.media.decode import VideoFrameReader, decode_audio, load_image
from r2v.media.encode import Mp4Writer
from r2v.media.fit import apply_fit, fit_frame, plan_fit
from r2v.media.formats import sniff
from r2v.media.probe import MediaInfo, probe
from r2v.protocol import OUTPUT_SIZES
from tests.mediafiles import (
    decode_summary,
    decoded_frames,
    frame_hashes,
    make_image,
    make_mp3,
    make_video,
    make_wav,
    pattern,
)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media")
    return {
        "jpeg": make_image(root / "a.jpg", 640, 360, "JPEG"),
        "png": make_image(root / "b.png", 300, 400, "PNG", seed=1),
        "webp": make_image(root / "c.webp", 500, 500, "WEBP", seed=2),
        "mp4": make_video(root / "v.mp4", 320, 240, seconds=2.0, pan_px_per_frame=4),
        "mov": make_video(root / "v.mov", 320, 180, seconds=1.5, audio=False, container="mov"),
        "wav": make_wav(root / "a.wav", seconds=1.5, rate=44100, channels=1),
        "mp3": make_mp3(root / "a.mp3", seconds=2.0),
    }


# --- sniffing and probing ---------------------------------------------------------------


def test_sniff_judges_content_not_name(tmp_path: Path) -> None:
    disguised = make_image(tmp_path / "photo.jpg", 64, 48, "PNG")
    found = sniff(disguised)
    assert found is not None and found.name == "png"
    text = tmp_path / "video.mp4"
    text.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:10\nhttp://example.com/a.ts\n")
    assert sniff(text) is None


@pytest.mark.parametrize(("key", "size"), [("jpeg", (640, 360)), ("png", (300, 400))])
def test_probe_image(media: dict[str, Path], key: str, size: tuple[int, int]) -> None:
    info = probe(media[key])
    assert info.is_image and info.format_name == key
    assert (info.width, info.height) == size
    assert not info.has_audio and info.duration == 0.0


def test_probe_webp(media: dict[str, Path]) -> None:
    info = probe(media["webp"])
    assert (info.format_name, info.width, info.height) == ("webp", 500, 500)


def test_probe_video_with_and_without_audio(media: dict[str, Path]) -> None:
    mp4 = probe(media["mp4"])
    assert (mp4.format_name, mp4.width, mp4.height) == ("mp4", 320, 240)
    assert mp4.has_video and mp4.has_audio
    assert (mp4.video_codec, mp4.audio_codec) == ("h264", "aac")
    assert mp4.fps == pytest.approx(24.0)
    assert mp4.duration == pytest.approx(2.0, abs=0.05)
    mov = probe(media["mov"])
    assert mov.has_video and not mov.has_audio
    assert mov.duration == pytest.approx(1.5, abs=0.05)


@pytest.mark.parametrize(("key", "seconds"), [("wav", 1.5), ("mp3", 2.0)])
def test_probe_audio(media: dict[str, Path], key: str, seconds: float) -> None:
    info = probe(media[key])
    assert info.format_name == key
    assert info.has_audio and not info.has_video
    assert info.duration == pytest.approx(seconds, abs=0.06)


def test_probe_applies_display_rotation(tmp_path: Path) -> None:
    path = _rotated_video(tmp_path / "rotated.mp4", 90)
    info = probe(path)
    assert (info.width, info.height) == (64, 96)
    with VideoFrameReader(path) as reader:
        assert reader.frame_at(0.0).shape == (96, 64, 3)


def test_probe_refuses_other_content(tmp_path: Path) -> None:
    bogus = tmp_path / "clip.mp4"
    bogus.write_bytes(b"<html>not a video</html>")
    with pytest.raises(ReferenceInvalid, match="not a supported format"):
        probe(bogus)


def test_probe_command_prints_one_json_line(media: dict[str, Path], tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "r2v.media.probe", str(media["mp4"])],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.count("\n") == 1
    assert MediaInfo.from_json(done.stdout) == probe(media["mp4"])
    bogus = tmp_path / "x.bin"
    bogus.write_bytes(b"\x00" * 64)
    failed = subprocess.run(
        [sys.executable, "-m", "r2v.media.probe", str(bogus)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failed.returncode == 1
    assert "supported format" in json.loads(failed.stdout)["error"]


# --- images ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["jpeg", "png", "webp"])
def test_load_image_formats(media: dict[str, Path], key: str) -> None:
    image = load_image(media[key])
    with Image.open(media[key]) as source:
        width, height = source.size
    assert image.shape == (height, width, 3) and image.dtype == np.uint8
    assert image.flags.c_contiguous


def test_load_image_applies_exif_orientation(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed rotated 90 degrees clockwise
    Image.fromarray(pattern(120, 80)).save(path, format="JPEG", exif=exif)
    assert load_image(path).shape == (120, 80, 3)
    assert (probe(path).width, probe(path).height) == (80, 120)


def test_load_image_composites_alpha_onto_black(tmp_path: Path) -> None:
    rgba = np.zeros((40, 60, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[:, 30:, 3] = 255  # left half fully transparent red, right half opaque red
    path = tmp_path / "cutout.png"
    Image.fromarray(rgba, "RGBA").save(path)
    image = load_image(path)
    assert image[:, :30].max() == 0
    assert (image[:, 30:] == (255, 0, 0)).all()


def test_load_image_scales_16_bit_greyscale(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    Image.fromarray(np.linspace(0, 65535, 64 * 48).reshape(48, 64).astype(np.uint16)).save(path)
    image = load_image(path)
    assert image.shape == (48, 64, 3) and image[0, 0, 0] == 0 and image[-1, -1, 0] == 255
    assert 100 < image[24, 0, 0] < 155  # mid-grey stays mid-grey


def test_load_image_pixel_cap(media: dict[str, Path]) -> None:
    with pytest.raises(ReferenceInvalid, match="over the limit"):
        load_image(media["jpeg"], max_pixels=10_000)


def test_load_image_draft_keeps_at_least_the_requested_size(tmp_path: Path) -> None:
    path = make_image(tmp_path / "big.jpg", 2400, 1600)
    image = load_image(path, draft_size=(500, 300))
    assert 500 <= image.shape[1] < 2400 and 300 <= image.shape[0] < 1600


@pytest.mark.parametrize(
    "content",
    [b"\xff\xd8\xff\xe0" + b"garbage" * 50, b"GIF89a" + b"\x00" * 100, b""],
    ids=["corrupt-jpeg", "gif", "empty"],
)
def test_load_image_refuses_bad_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(ReferenceInvalid, match="bad.jpg"):
        load_image(path)


def test_load_image_refuses_truncated_jpeg(media: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "cut.jpg"
    path.write_bytes(media["jpeg"].read_bytes()[:2000])
    with pytest.raises(ReferenceInvalid):
        load_image(path)


# --- video and audio ------------------------------------------------------------------


def test_video_reader_samples_forward(media: dict[str, Path]) -> None:
    reference = decoded_frames(media["mp4"])
    with VideoFrameReader(media["mp4"]) as reader:
        first = reader.frame_at(0.0)
        between = reader.frame_at(0.5 + 0.4 / 24)  # inside frame 12's display interval
        later = reader.frame_at(1.0)
        past_end = reader.frame_at(10.0)
        with pytest.raises(ValueError, match="forward"):
            reader.frame_at(0.5)
    assert np.array_equal(first, reference[0])
    assert np.array_equal(between, reference[12])
    assert np.array_equal(later, reference[24])
    assert np.array_equal(past_end, reference[-1])
    assert np.abs(first.astype(int) - later.astype(int)).mean() > 5  # the picture pans


def test_video_reader_refuses_audio_and_garbage(media: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ReferenceInvalid, match="send one of: MP4"):
        VideoFrameReader(media["wav"])
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 200)
    with pytest.raises(ReferenceInvalid, match="broken.mp4"):
        with VideoFrameReader(broken) as reader:
            reader.frame_at(0.0)


@pytest.mark.parametrize(("key", "seconds"), [("wav", 1.5), ("mp3", 2.0), ("mp4", 2.0)])
def test_decode_audio_resamples_to_48k_stereo(
    media: dict[str, Path], key: str, seconds: float
) -> None:
    samples = decode_audio(media[key])
    assert samples.dtype == np.float32 and samples.shape[0] == 2
    assert samples.shape[1] == pytest.approx(seconds * 48000, abs=48000 * 0.03)
    assert 0.3 < float(np.abs(samples).max()) <= 1.0
    assert np.allclose(samples[0], samples[1], atol=0.01)  # mono and centred tones stay so


def test_decode_audio_of_silent_video_and_limit(media: dict[str, Path]) -> None:
    assert decode_audio(media["mov"]).shape == (2, 0)
    mono = decode_audio(media["mp3"], rate=16000, channels=1, max_seconds=0.5)
    assert mono.shape == (1, 8000)


# --- fitting --------------------------------------------------------------------------


def test_fit_crops_close_ratios_and_pads_far_ones() -> None:
    assert plan_fit((1600, 1200), (1248, 704)).mode == "crop"  # 4:3 into 16:9 loses 25%
    assert plan_fit((1000, 1000), (1248, 704)).mode == "pad"
    crop = plan_fit((1600, 1200), (1248, 704))
    assert crop.source_box == (0, 148, 1600, 903)  # 1248x704 is a little wider than 16:9
    pad = plan_fit((1000, 1000), (1248, 704))
    assert pad.target_box == (272, 0, 704, 704)


@pytest.mark.parametrize(
    "source", [(4000, 300), (300, 4000), (1, 1), (7, 3000), (1920, 1080), (333, 777)]
)
def test_fit_gives_exact_sizes_without_stretching(source: tuple[int, int]) -> None:
    image = pattern(*source) if max(source) > 8 else np.full((*source[::-1], 3), 200, np.uint8)
    for sizes in OUTPUT_SIZES.values():
        for size in sizes.values():
            frame = fit_frame(image, size)
            assert frame.shape == (size[1], size[0], 3) and frame.dtype == np.uint8
            plan = plan_fit(source, size)
            _, _, sw, sh = plan.source_box
            _, _, tw, th = plan.target_box
            # The scale is the same on both axes (up to rounding to whole pixels).
            assert tw / sw == pytest.approx(th / sh, rel=0.02, abs=2 / min(sw, sh))


def test_fit_pad_shows_the_whole_picture_over_a_darker_backdrop() -> None:
    image = np.full((300, 4000, 3), 220, np.uint8)
    frame = fit_frame(image, (560, 752))
    plan = plan_fit((4000, 300), (560, 752))
    x, y, w, h = plan.target_box
    assert frame[y + 1 : y + h - 1, x : x + w].min() >= 215
    assert frame[:y].max() < 120 and frame[y + h :].max() < 120
    assert np.array_equal(apply_fit(image, plan), frame)


# --- encoding -------------------------------------------------------------------------


def _frames(count: int, width: int, height: int, seed: int = 0) -> list[np.ndarray]:
    base = pattern(width + count * 3, height, seed)
    return [np.ascontiguousarray(base[:, i * 3 : i * 3 + width]) for i in range(count)]


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * 48000)) / 48000
    return np.stack([np.sin(2 * np.pi * 440 * t)] * 2).astype(np.float32) * 0.5


def test_writer_output_is_h264_aac_24fps_faststart(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    with Mp4Writer(path, 256, 144, audio=_tone(3.0)) as writer:
        for frame in _frames(48, 256, 144):
            writer.write(frame)
    summary = decode_summary(path)
    assert (summary.width, summary.height, summary.fps) == (256, 144, 24.0)
    assert summary.video_frames == 48 and summary.video_duration == pytest.approx(2.0)
    assert (summary.video_codec, summary.pix_fmt) == ("h264", "yuv420p")
    assert (summary.audio_codec, summary.audio_rate, summary.audio_channels) == ("aac", 48000, 2)
    assert abs(summary.audio_duration - 2.0) < 1 / 24  # cut to the video's length
    data = path.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # +faststart: the index comes first
    with av.open(str(path)) as container:
        context = container.streams.video[0].codec_context
        assert (context.color_range, context.colorspace) == (1, 6)  # tv range, smpte170m


def test_writer_pads_short_audio_and_omits_missing_audio(tmp_path: Path) -> None:
    padded, silent = tmp_path / "padded.mp4", tmp_path / "silent.mp4"
    with Mp4Writer(padded, 128, 96, audio=_tone(0.3), preset="standard") as writer:
        for frame in _frames(36, 128, 96):
            writer.write(frame)
    with Mp4Writer(silent, 128, 96) as writer:
        for frame in _frames(30, 128, 96):
            writer.write(frame)
    assert abs(decode_summary(padded).audio_duration - 1.5) < 1 / 24
    summary = decode_summary(silent)
    assert not summary.has_audio and summary.video_frames == 30


def test_writer_is_deterministic(tmp_path: Path) -> None:
    frames = _frames(30, 160, 128, seed=3)
    outputs = []
    for name in ("a.mp4", "b.mp4"):
        with Mp4Writer(tmp_path / name, 160, 128, audio=_tone(1.0)) as writer:
            for frame in frames:
                writer.write(frame)
        outputs.append(frame_hashes(tmp_path / name))
    assert outputs[0] == outputs[1] and len(outputs[0]) == 30


@pytest.mark.parametrize("preset", ["fast", "standard"])
def test_writer_gives_the_same_frames_every_time_in_both_presets(
    tmp_path: Path, preset: EncodePreset
) -> None:
    # With x264's defaults (macroblock-tree rate control on several threads) runs differ
    # now and then: at this size, four encodes disagreed in about one try in three.
    frames = _frames(72, 864, 496, seed=5)
    hashes = []
    for run in range(4):
        with Mp4Writer(tmp_path / f"{run}.mp4", 864, 496, preset=preset) as writer:
            for frame in frames:
                writer.write(frame)
        hashes.append(frame_hashes(tmp_path / f"{run}.mp4"))
    assert all(h == hashes[0] for h in hashes)


def _x264_settings(path: Path) -> dict[str, str]:
    """The settings x264 wrote into its stream (the SEI message every x264 stream opens with)."""
    data = path.read_bytes()
    start = data.index(b"options: ") + len(b"options: ")
    text = data[start : data.index(b"\x00", start)].decode()
    return dict(item.split("=", 1) for item in text.split())


def test_presets_encode_with_their_documented_x264_settings(tmp_path: Path) -> None:
    settings = {}
    for preset in ("fast", "standard"):
        path = tmp_path / f"{preset}.mp4"
        with Mp4Writer(path, 160, 128, preset=preset) as writer:
            for frame in _frames(12, 160, 128):
                writer.write(frame)
        settings[preset] = _x264_settings(path)
    fast, standard = settings["fast"], settings["standard"]
    # fast: ultrafast (no B-frames, the simplest analysis) with CABAC and deblocking on.
    assert (fast["subme"], fast["bframes"], fast["crf"]) == ("0", "0", "23.0")
    assert (fast["cabac"], fast["deblock"], fast["aq"]) == ("1", "1:0:0", "0")
    # standard: superfast's B-frames and intra partitions, trellis, no AQ, a higher CRF.
    assert (standard["subme"], standard["bframes"], standard["crf"]) == ("1", "3", "24.0")
    assert (standard["trellis"], standard["aq"], standard["8x8dct"]) == ("1", "0", "1")
    assert fast["mbtree"] == standard["mbtree"] == "0"  # the same bytes for the same frames


@pytest.mark.parametrize("preset", ["fast", "standard"])
def test_a_coded_soundtrack_is_muxed_as_the_writer_would_code_it(
    tmp_path: Path, preset: EncodePreset
) -> None:
    rng = np.random.default_rng(4)
    sound = (rng.standard_normal((2, 48000)) * 0.2).astype(np.float32)
    track = encode_aac(sound, preset)
    files = {"raw": tmp_path / "raw.mp4", "coded": tmp_path / "coded.mp4"}
    for name, path in files.items():
        with Mp4Writer(path, 64, 64, preset=preset, audio=sound if name == "raw" else track) as out:
            for frame in _frames(24, 64, 64):
                out.write(frame)
    assert files["raw"].read_bytes() == files["coded"].read_bytes()
    with av.open(str(files["coded"])) as container:
        decoded = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
    # Decoded after both files were written: muxing left the track's own packets alone.
    assert np.array_equal(track.heard(), decoded), "heard() is what a player decodes"


def test_a_soundtrack_coded_for_the_other_preset_is_refused(tmp_path: Path) -> None:
    track = encode_aac(_tone(1.0), "standard")
    with pytest.raises(ValueError, match="coded for standard"):
        with Mp4Writer(tmp_path / "mixed.mp4", 64, 64, preset="fast", audio=track) as out:
            for frame in _frames(24, 64, 64):
                out.write(frame)
    assert not (tmp_path / "mixed.mp4").exists()


def test_writer_accepts_rgba_like_rgb(tmp_path: Path) -> None:
    frames = _frames(12, 96, 64)
    with Mp4Writer(tmp_path / "rgb.mp4", 96, 64) as writer:
        for frame in frames:
            writer.write(frame)
    with Mp4Writer(tmp_path / "rgba.mp4", 96, 64) as writer:
        for frame in frames:
            writer.write(np.dstack([frame, np.full(frame.shape[:2], 7, np.uint8)]))
    assert frame_hashes(tmp_path / "rgb.mp4") == frame_hashes(tmp_path / "rgba.mp4")


def test_writer_checks_sizes_and_cleans_up(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        Mp4Writer(tmp_path / "odd.mp4", 101, 64)
    path = tmp_path / "aborted.mp4"
    with pytest.raises(RuntimeError, match="stop"):
        with Mp4Writer(path, 64, 64) as writer:
            writer.write(np.zeros((64, 64, 3), np.uint8))
            with pytest.raises(ValueError, match="expects"):
                writer.write(np.zeros((64, 32, 3), np.uint8))
            raise RuntimeError("stop")
    assert not path.exists()
    empty = tmp_path / "empty.mp4"
    with pytest.raises(GenerationFailed, match="no frames"):
        with Mp4Writer(empty, 64, 64):
            pass
    assert not empty.exists()


def _rotated_video(path: Path, degrees: int) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.set_display_rotation(degrees)
        for index in range(3):
            frame = av.VideoFrame.from_ndarray(pattern(96, 64), format="rgb24")
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path
