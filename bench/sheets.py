"""Contact sheets of the compositor: a dozen varied prompts, rendered and laid out to look at.

Each case renders one request through `CompositorEngine` (the same engine the server runs)
with reference media made here: three pictures (a portrait, a city at sunset, a product
shot whose subject sits in the upper left), a clip of a ball rolling across a room with a
steady tone, a clip filmed by a camera that pans right and then pushes in, a beat track
and a stand-in for narration. The sheet shows evenly spaced frames with their times, the
soundtrack's loudness under them, and what the engine said it made (the storyboard, sound
cues and warnings), so a person can check the render against the words at a glance.

    python bench/sheets.py                     # every case, 480p, into bench/sheets-out/
    python bench/sheets.py --only sea,whip     # the cases whose names contain these words
    python bench/sheets.py --resolution 720p --preset standard --out /tmp/sheets

It prints each case's render time and the sheet's path; `index.md` in the output folder
lists the prompts beside their sheets.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
import wave
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from r2v.engines.base import (
    AudioInput,
    EngineRequest,
    ImageInput,
    LocalContext,
    RenderSummary,
    VideoInput,
)
from r2v.engines.compositor import CompositorEngine
from r2v.protocol import FPS

RATE = 48000
TILE_WIDTH = 320
COLUMNS = 5
MODELS = {
    "fast": "seedance-2.0-fast-reference-to-video",
    "standard": "seedance-2.0-reference-to-video",
}


@dataclass(frozen=True)
class Case:
    name: str
    prompt: str
    images: tuple[str, ...] = ()
    videos: tuple[str, ...] = ()
    audios: tuple[str, ...] = ()
    duration: int = 6
    aspect_ratio: str = "16:9"


CASES = (
    Case("sea-dawn", "a calm sea at dawn"),
    Case("mountains-night-snow", "mountains at night, snow falling, the camera slowly drifting"),
    Case("neon-city-rain", "a neon city skyline in the rain", duration=5),
    Case("zh-dusk-beach", "黄昏的海边，镜头缓缓推进", duration=5),
    Case("memory-abstract", "the feeling of a memory", duration=5),
    Case(
        "pinned-follow-camera",
        "@Image1 as the first frame, follow the camera of @Video2.",
        images=("portrait",),
        videos=("ball", "camera"),
    ),  # fmt: skip
    Case(
        "whip-then-static",
        "@Image2 with a whip pan, then @Image3 static, locked off.",
        images=("portrait", "city", "product"),
        duration=5,
    ),  # fmt: skip
    Case(
        "product-push-golden",
        "@Image3 slowly pushing in, golden hour light. @Audio1 as background music.",
        images=("portrait", "city", "product"),
        audios=("music",),
        duration=5,
    ),  # fmt: skip
    Case(
        "narration-over-music",
        "Narration: @Audio2. @Audio1 as background music. @Image2 at dusk, panning right, "
        "then @Image1.",
        images=("portrait", "city"),
        audios=("music", "voice"),
        duration=8,
    ),  # fmt: skip
    Case(
        "clip-own-speed-bw",
        "@Image2 for a moment, then @Video1 in black and white.",
        images=("portrait", "city"),
        videos=("ball",),
        duration=5,
    ),  # fmt: skip
    Case("slow-motion", "@Video1 in slow motion.", videos=("ball",), duration=5),
    Case(
        "zh-night-rain-pan",
        "@图片2 作为首帧，夜晚，下雨，镜头向右平移",
        images=("portrait", "city"),
        duration=5,
    ),  # fmt: skip
    Case(
        "fog-vintage-left",
        "@Image2 in fog, a vintage film look, quickly zooming in on the left.",
        images=("portrait", "city"),
        duration=5,
    ),  # fmt: skip
    Case(
        "portrait-in-landscape",
        "@Image1 as the first frame, then the camera pans up. @Audio1 as background music.",
        images=("portrait",),
        audios=("music",),
        duration=5,
    ),  # fmt: skip
)


# --- reference media ----------------------------------------------------------------------


def _save(path: Path, picture: NDArray[np.uint8]) -> Path:
    Image.fromarray(picture).save(path, quality=92)
    return path


def _vertical(
    height: int, width: int, top: tuple[int, ...], bottom: tuple[int, ...]
) -> NDArray[np.float32]:
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    colours = np.asarray(top, np.float32) * (1 - ramp) + np.asarray(bottom, np.float32) * ramp
    return np.repeat(colours, width, axis=1)


def portrait(path: Path) -> Path:
    """A person in a coat against a soft backdrop, 720x1280."""
    w, h = 720, 1280
    canvas = _vertical(h, w, (96, 128, 160), (40, 52, 70)).astype(np.uint8).copy()
    cv2.ellipse(canvas, (w // 2, h), (300, 420), 0, 180, 360, (150, 60, 50), -1)  # coat
    cv2.rectangle(canvas, (w // 2 - 45, 560), (w // 2 + 45, 700), (220, 170, 140), -1)  # neck
    cv2.ellipse(canvas, (w // 2, 470), (130, 170), 0, 0, 360, (232, 184, 152), -1)  # face
    cv2.ellipse(canvas, (w // 2, 380), (150, 110), 0, 180, 360, (60, 40, 30), -1)  # hair
    for x in (w // 2 - 50, w // 2 + 50):
        cv2.circle(canvas, (x, 470), 14, (40, 40, 50), -1)
    cv2.ellipse(canvas, (w // 2, 560), (50, 18), 0, 0, 180, (150, 60, 60), 4)
    return _save(path, canvas)


def city(path: Path) -> Path:
    """A skyline against a sunset, 1280x720, with lit windows."""
    w, h = 1280, 720
    canvas = _vertical(h, w, (70, 90, 170), (250, 160, 90)).astype(np.uint8).copy()
    rng = np.random.default_rng(11)
    cv2.circle(canvas, (900, 470), 60, (255, 220, 150), -1)
    x = 0
    while x < w:
        bw, bh = int(rng.integers(60, 140)), int(rng.integers(180, 520))
        shade = int(rng.integers(25, 60))
        cv2.rectangle(canvas, (x, h - bh), (x + bw, h), (shade, shade, shade + 15), -1)
        for wy in range(h - bh + 14, h - 10, 26):
            for wx in range(x + 10, x + bw - 14, 22):
                if rng.random() < 0.45:
                    cv2.rectangle(canvas, (wx, wy), (wx + 9, wy + 12), (255, 214, 120), -1)
        x += bw + int(rng.integers(0, 12))
    return _save(path, canvas)


def product(path: Path) -> Path:
    """A red sneaker-like object in the upper left of a plain grey studio, 1024x1024."""
    canvas = _vertical(1024, 1024, (200, 200, 204), (170, 170, 176)).astype(np.uint8).copy()
    cv2.ellipse(canvas, (300, 300), (190, 90), -15, 0, 360, (200, 30, 40), -1)
    cv2.ellipse(canvas, (300, 360), (200, 40), -15, 0, 360, (245, 245, 245), -1)
    for n in range(5):
        cv2.line(
            canvas, (230 + 30 * n, 250 + 8 * n), (260 + 30 * n, 300 + 8 * n), (255, 255, 255), 6
        )
    return _save(path, canvas)


def _write_video(path: Path, frames: list[NDArray[np.uint8]], tone: float | None) -> Path:
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "veryfast", "crf": "18"}
        sound = out.add_stream("aac", rate=RATE, layout="stereo") if tone is not None else None
        for index, picture in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode())
        if sound is not None and tone is not None:
            t = np.arange(round(len(frames) / FPS * RATE)) / RATE
            mono = (0.3 * np.sin(2 * math.pi * tone * t)).astype(np.float32)
            stereo = np.repeat(mono[None], 2, axis=0)
            for start in range(0, stereo.shape[1], 1024):
                piece = np.ascontiguousarray(stereo[:, start : start + 1024])
                chunk = av.AudioFrame.from_ndarray(piece, format="fltp", layout="stereo")
                chunk.sample_rate, chunk.pts, chunk.time_base = RATE, start, Fraction(1, RATE)
                out.mux(sound.encode(chunk))
            out.mux(sound.encode())
    return path


def ball(path: Path, seconds: float = 4.0) -> Path:
    """A ball rolling left to right across a room at constant speed, with a 440 Hz tone."""
    w, h = 640, 360
    room = _vertical(h, w, (210, 200, 180), (150, 130, 110)).astype(np.uint8)
    room[250:] = (110, 85, 60)
    frames = []
    count = round(seconds * FPS)
    for index in range(count):
        picture = room.copy()
        x = round(60 + (w - 120) * index / (count - 1))
        cv2.circle(picture, (x, 215), 34, (30, 90, 200), -1)
        cv2.line(picture, (x - 34, 215), (x + 34, 215), (240, 240, 240), 3)
        frames.append(picture)
    return _write_video(path, frames, 440.0)


def camera(path: Path, seconds: float = 4.0) -> Path:
    """A camera over a wide street of coloured houses: pans right for half the clip, then
    pushes in."""
    w, h = 640, 360
    world_w, world_h = 1800, 700
    world = _vertical(world_h, world_w, (120, 170, 230), (200, 220, 240)).astype(np.uint8).copy()
    rng = np.random.default_rng(5)
    for x in range(0, world_w, 110):
        colour = tuple(int(c) for c in rng.integers(60, 230, 3))
        top = int(rng.integers(250, 420))
        cv2.rectangle(world, (x, top), (x + 100, world_h), colour, -1)
        cv2.rectangle(world, (x + 38, world_h - 90), (x + 62, world_h), (60, 40, 30), -1)
    frames = []
    count = round(seconds * FPS)
    for index in range(count):
        t = index / (count - 1)
        pan = min(t, 0.5) * 2
        zoom = 1.0 + 0.6 * max(0.0, t - 0.5) * 2
        cx, cy = 500 + 700 * pan, 420
        scale = 1.0 / zoom
        matrix = np.array([[scale, 0, cx - w * scale / 2], [0, scale, cy - h * scale / 2]])
        frames.append(
            cv2.warpAffine(world, matrix, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        )
    return _write_video(path, frames, None)


def _write_wav(path: Path, signal: NDArray[np.float64]) -> Path:
    pcm = (np.clip(signal, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.tobytes())
    return path


def music(path: Path, seconds: float = 10.0) -> Path:
    """A 120 bpm beat (kick on every beat) under a slow two-chord pad."""
    t = np.arange(round(seconds * RATE)) / RATE
    chord = np.where((t % 4.0) < 2.0, 1.0, 1.25)
    signal = 0.12 * (np.sin(2 * math.pi * 220 * chord * t) + np.sin(2 * math.pi * 330 * chord * t))
    kick = np.sin(2 * math.pi * 60 * np.arange(4800) / RATE) * np.exp(-np.arange(4800) / 1200)
    for beat in np.arange(0.0, seconds, 0.5):
        start = round(beat * RATE)
        piece = kick[: len(t) - start]
        signal[start : start + len(piece)] += 0.6 * piece
    return _write_wav(path, signal)


def voice(path: Path, seconds: float = 6.0) -> Path:
    """A stand-in for narration: syllable-like bursts of a gliding, buzzy tone, in phrases."""
    t = np.arange(round(seconds * RATE)) / RATE
    pitch = 160 + 30 * np.sin(2 * math.pi * 0.7 * t)
    phase = 2 * math.pi * np.cumsum(pitch) / RATE
    buzz = sum(np.sin(k * phase) / k for k in range(1, 6))
    syllables = np.clip(np.sin(2 * math.pi * 4.0 * t) * 1.5, 0, 1)
    phrases = ((t % 2.5) < 1.8).astype(np.float64)
    return _write_wav(path, 0.35 * buzz * syllables * phrases)


def make_references(folder: Path) -> dict[str, ImageInput | VideoInput | AudioInput]:
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "portrait": ImageInput(portrait(folder / "portrait.jpg"), 720, 1280),
        "city": ImageInput(city(folder / "city.jpg"), 1280, 720),
        "product": ImageInput(product(folder / "product.jpg"), 1024, 1024),
        "ball": VideoInput(ball(folder / "ball.mp4"), 640, 360, 4.0, float(FPS), True),
        "camera": VideoInput(camera(folder / "camera.mp4"), 640, 360, 4.0, float(FPS), False),
        "music": AudioInput(music(folder / "music.wav"), 10.0),
        "voice": AudioInput(voice(folder / "voice.wav"), 6.0),
    }


# --- the sheet ------------------------------------------------------------------------------


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default()


def _decode(path: Path) -> tuple[list[NDArray[np.uint8]], NDArray[np.float32] | None]:
    frames: list[NDArray[np.uint8]] = []
    chunks: list[NDArray[np.float32]] = []
    with av.open(str(path)) as source:
        for frame in source.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
    with av.open(str(path)) as source:
        if source.streams.audio:
            for frame in source.decode(audio=0):
                chunks.append(
                    frame.to_ndarray().astype(np.float32).reshape(len(frame.layout.channels), -1)
                )
    return frames, (np.concatenate(chunks, axis=1) if chunks else None)


def _loudness_strip(audio: NDArray[np.float32] | None, width: int, height: int) -> Image.Image:
    """The soundtrack's short-term level (dBFS, 50 ms windows) as a filled curve."""
    strip = Image.new("RGB", (width, height), (24, 24, 28))
    draw = ImageDraw.Draw(strip)
    if audio is None:
        draw.text((8, height // 2 - 8), "no audio stream", fill=(160, 160, 160), font=_font(14))
        return strip
    mono = audio.mean(axis=0)
    window = RATE // 20
    usable = len(mono) // window * window
    rms = np.sqrt((mono[:usable].reshape(-1, window) ** 2).mean(axis=1) + 1e-12)
    db = np.clip(20 * np.log10(rms), -60, 0)
    xs = np.linspace(0, width - 1, len(db))
    points = [
        (float(x), float(height - 1 - (d + 60) / 60 * (height - 4)))
        for x, d in zip(xs, db, strict=True)
    ]
    draw.polygon([(0, height - 1), *points, (width - 1, height - 1)], fill=(70, 140, 200))
    for level in (-12, -24, -36, -48):
        y = height - 1 - (level + 60) / 60 * (height - 4)
        draw.line([(0, y), (width, y)], fill=(60, 60, 70))
        draw.text((4, y - 12), f"{level} dB", fill=(140, 140, 150), font=_font(11))
    return strip


def _summary_lines(summary: RenderSummary | None) -> list[str]:
    if summary is None:
        return []
    lines = []
    for shot in summary.shots:
        extra = {
            k: v
            for k, v in dataclasses.asdict(shot).items()
            if k not in ("start", "end", "shows", "camera", "words") and v is not None
        }
        more = json.dumps(extra, ensure_ascii=False) if extra else ""
        lines.append(f"{shot.start:5.2f}-{shot.end:5.2f} s  {shot.shows}  {shot.camera}  {more}")
    for sound in summary.sounds:
        how = sound.role + (", loops" if sound.loops else "")
        lines.append(f"sound {sound.start:5.2f}-{sound.end:5.2f} s  {sound.plays} ({how})")
    lines.extend(f"warning: {w}" for w in summary.warnings)
    return lines


def contact_sheet(
    case: Case, path: Path, summary: RenderSummary | None, seconds: float, rows: int
) -> Image.Image:
    frames, audio = _decode(path)
    count = COLUMNS * rows
    picks = [round(i * (len(frames) - 1) / (count - 1)) for i in range(count)]
    tile_h = round(TILE_WIDTH * frames[0].shape[0] / frames[0].shape[1])
    header = [
        f"{case.name}: {case.prompt}",
        f"{len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]}, {seconds:.1f} s",
        *_summary_lines(summary),
    ]
    line_h = 18
    head_h = 12 + line_h * len(header)
    width = COLUMNS * TILE_WIDTH
    strip_h = 80
    sheet = Image.new("RGB", (width, head_h + rows * (tile_h + 20) + strip_h), (16, 16, 20))
    draw = ImageDraw.Draw(sheet)
    for n, line in enumerate(header):
        draw.text(
            (8, 6 + n * line_h),
            line,
            fill=(235, 235, 235) if n == 0 else (180, 190, 200),
            font=_font(14),
        )
    for n, index in enumerate(picks):
        x, y = (n % COLUMNS) * TILE_WIDTH, head_h + (n // COLUMNS) * (tile_h + 20)
        tile = Image.fromarray(frames[index]).resize((TILE_WIDTH, tile_h), Image.Resampling.LANCZOS)
        sheet.paste(tile, (x, y))
        draw.text(
            (x + 4, y + tile_h + 2),
            f"#{index}  {index / FPS:.2f} s",
            fill=(200, 200, 200),
            font=_font(12),
        )
    sheet.paste(_loudness_strip(audio, width, strip_h), (0, head_h + rows * (tile_h + 20)))
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "sheets-out")
    parser.add_argument("--only", default="", help="comma-separated parts of case names")
    parser.add_argument("--resolution", default="480p", choices=("480p", "720p"))
    parser.add_argument("--preset", default="fast", choices=("fast", "standard"))
    parser.add_argument("--rows", type=int, default=3, help="rows of frames on each sheet")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    wanted = [w for w in args.only.split(",") if w]
    cases = [c for c in CASES if not wanted or any(w in c.name for w in wanted)]
    if not cases:
        sys.exit(f"no case matches {args.only!r}: the cases are {', '.join(c.name for c in CASES)}")
    out: Path = args.out
    refs = make_references(out / "references")
    index = ["# Compositor contact sheets", ""]
    for case in cases:
        request = EngineRequest(
            model=MODELS[args.preset],
            preset=args.preset, prompt=case.prompt, resolution=args.resolution,
            aspect_ratio=case.aspect_ratio,  # type: ignore[arg-type]
            duration=case.duration, generate_audio=True, seed=args.seed,
            images=tuple(refs[n] for n in case.images),  # type: ignore[misc]
            videos=tuple(refs[n] for n in case.videos),  # type: ignore[misc]
            audios=tuple(refs[n] for n in case.audios),  # type: ignore[misc]
        )  # fmt: skip
        workspace = out / "work" / case.name
        workspace.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        result = CompositorEngine().generate(request, LocalContext(workspace))
        seconds = time.perf_counter() - began
        sheet = contact_sheet(case, result.path, result.summary, seconds, args.rows)
        target = out / f"{case.name}.png"
        sheet.save(target)
        index += [
            f"## {case.name}",
            "",
            f"`{case.prompt}`",
            "",
            f"![{case.name}]({target.name})",
            "",
        ]
        print(f"{case.name:24s} {seconds:6.1f} s  {target}")
    (out / "index.md").write_text("\n".join(index), encoding="utf-8")


if __name__ == "__main__":
    main()
