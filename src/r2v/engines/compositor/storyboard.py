"""The storyboard: every decision about a render, made before any pixel is drawn.

`build_storyboard` turns an `EngineRequest` into a `Storyboard`: the output size, the
frame count, the shots in order with their frame ranges, camera moves, clip timing and
crossfades, and the soundtrack's plan. Rendering only executes it, so tests (and a later,
deeper storyboard) can inspect and change the plan without touching pixels.

Shot order: the images and videos in the order the prompt first mentions them, then those
never mentioned, images before videos, each list in its own order. A reference named in the
same clause as "first frame" (or "last frame") opens (or closes) the video, at rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from r2v.engines.base import EngineRequest, Preset, output_size, resolve_aspect_ratio
from r2v.engines.compositor.motion import MotionPath, random_path
from r2v.protocol import AUTO_DURATION, FPS, MAX_DURATION, MIN_DURATION, parse_mentions

ShotKind = Literal["image", "video", "ambient"]
Pin = Literal["first", "last"]
SoundSource = Literal["none", "audio", "video", "synth"]

IMAGE_SHOT_SECONDS = 3.0
"""The weight of an image shot, and the seconds per shot `duration: -1` assumes."""
TEXT_ONLY_SECONDS = 5
CROSSFADE_FRAMES = 12
"""Half a second of crossfade between shots, shortened when shots are short."""
MIN_CLIP_SPEED, MAX_CLIP_SPEED = 0.5, 2.0

# Seed streams: each part of the plan draws from its own generator, so changing one part
# (say, adding a motion kind) leaves the others' draws, and their outputs, as they were.
STREAM_MOTION, STREAM_AMBIENT, STREAM_SOUND = 1, 2, 3

_CLAUSE = re.compile(r"[^.,;!?。，、；！？\n]+")
_FIRST = re.compile(r"first[\s-]+frame|opening[\s-]+frame|首帧|第一帧|开头", re.IGNORECASE)
_LAST = re.compile(r"last[\s-]+frame|final[\s-]+frame|ending[\s-]+frame|尾帧|最后一帧|结尾", re.I)
_SENTENCE = re.compile(r"[^.!?。！？\n]*[^\s.!?。！？\n][^.!?。！？\n]*")


@dataclass(frozen=True)
class Shot:
    """One shot: a reference (or generated visuals) over a range of output frames.

    Frames `start` to `end - 1` belong to the shot; its first `fade_in` frames crossfade
    with the end of the previous shot.
    """

    kind: ShotKind
    index: int
    """0-based index into the request's images or videos; the variation for ambient shots."""
    start: int
    end: int
    fade_in: int = 0
    motion: MotionPath | None = None
    """The camera move of an image shot."""
    clip_start: float = 0.0
    """Video shots: the source second shown at the shot's first frame."""
    clip_speed: float = 1.0
    """Video shots: source seconds per output second."""
    pin: Pin | None = None

    @property
    def length(self) -> int:
        """Frames in the shot, its crossfades included."""
        return self.end - self.start

    @property
    def label(self) -> str:
        """How the prompt names the reference: `@Image2`, `@Video1`; `ambient` otherwise."""
        return "ambient" if self.kind == "ambient" else f"@{self.kind.capitalize()}{self.index + 1}"

    def clip_time(self, frame: int) -> float:
        """The source second a video shot shows at output `frame`."""
        return self.clip_start + (frame - self.start) / FPS * self.clip_speed


@dataclass(frozen=True)
class SoundPlan:
    """Where the soundtrack comes from: no sound, audio references (mixed), one reference
    video's own track, or a seeded synthesized pad."""

    source: SoundSource
    indices: tuple[int, ...] = ()


@dataclass(frozen=True)
class Storyboard:
    """The complete plan of one render."""

    width: int
    height: int
    frames: int
    seed: int
    preset: Preset
    shots: tuple[Shot, ...]
    sound: SoundPlan
    prompt: str = ""

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the output."""
        return (self.width, self.height)

    @property
    def seconds(self) -> int:
        """The video's length in whole seconds."""
        return self.frames // FPS

    def live(self, frame: int) -> tuple[Shot, ...]:
        """The shots on screen at `frame`: one, or two during a crossfade (older first)."""
        return tuple(shot for shot in self.shots if shot.start <= frame < shot.end)


@dataclass(frozen=True)
class Visual:
    """A visual reference in shot order: which list, which item, and any pin."""

    kind: Literal["image", "video"]
    index: int
    pin: Pin | None = None


def build_storyboard(request: EngineRequest) -> Storyboard:
    """Plan the render of `request`: size, length, shots and sound, all seeded."""
    visuals = shot_order(request)
    sound = plan_sound(request, visuals)
    frames = choose_seconds(request, visuals) * FPS
    width, height = output_size(request.resolution, resolve_aspect_ratio(request))
    motion_rng = np.random.default_rng([request.seed, STREAM_MOTION])
    if visuals:
        weights = [_weight(request, visual) for visual in visuals]
    else:
        weights = [1.0] * _ambient_shot_count(request.prompt, frames)
    lengths, fade = _allocate(frames, weights)
    shots: list[Shot] = []
    start = 0
    for position, length in enumerate(lengths):
        end = start + length
        fade_in = fade if position else 0
        if not visuals:
            shots.append(Shot("ambient", position, start, end, fade_in))
        elif visuals[position].kind == "image":
            pin = visuals[position].pin
            motion = random_path(motion_rng, from_rest=pin == "first", to_rest=pin == "last")
            shots.append(
                Shot("image", visuals[position].index, start, end, fade_in, motion, pin=pin)
            )
        else:
            index = visuals[position].index
            speed = _clip_speed(request.videos[index].duration, length / FPS)
            shots.append(
                Shot(
                    "video", index, start, end, fade_in, clip_speed=speed, pin=visuals[position].pin
                )
            )
        start = end - fade
    return Storyboard(
        width, height, frames, request.seed, request.preset, tuple(shots), sound, request.prompt
    )


def shot_order(request: EngineRequest) -> list[Visual]:
    """The visual references in shot order, with first/last-frame pins applied."""
    counts = {"image": len(request.images), "video": len(request.videos)}
    order: list[Visual] = []
    seen: set[tuple[str, int]] = set()
    for mention in parse_mentions(request.prompt):
        if mention.kind != "audio" and 1 <= mention.index <= counts[mention.kind]:
            key = (mention.kind, mention.index - 1)
            if key not in seen:
                seen.add(key)
                order.append(Visual(mention.kind, mention.index - 1))
    kinds: tuple[Literal["image", "video"], ...] = ("image", "video")
    for kind in kinds:
        for index in range(counts[kind]):
            if (kind, index) not in seen:
                order.append(Visual(kind, index))
    pins = _pins(request)
    first = [v for v in order if pins.get((v.kind, v.index)) == "first"][:1]
    last = [v for v in order if pins.get((v.kind, v.index)) == "last" and v not in first][:1]
    middle = [v for v in order if v not in first and v not in last]
    return (
        [Visual(v.kind, v.index, "first") for v in first]
        + middle
        + [Visual(v.kind, v.index, "last") for v in last]
    )


def _pins(request: EngineRequest) -> dict[tuple[str, int], Pin]:
    """Which references the prompt asks to open or close the video."""
    pins: dict[tuple[str, int], Pin] = {}
    for clause in _CLAUSE.finditer(request.prompt):
        text = clause.group(0)
        mentions = [m for m in parse_mentions(text) if m.kind != "audio"]
        for pin, phrase in (("first", _FIRST), ("last", _LAST)):
            found = phrase.search(text)
            if found is None or not mentions:
                continue
            # "@Image1 as the first frame": the mention just before the phrase; failing
            # that ("first frame: @Image1"), the one just after it.
            before = [m for m in mentions if m.end <= found.start()]
            chosen = before[-1] if before else mentions[0]
            pins.setdefault((chosen.kind, chosen.index - 1), pin)  # type: ignore[arg-type]
    return pins


def plan_sound(request: EngineRequest, visuals: list[Visual]) -> SoundPlan:
    """The soundtrack's source, by API.md's order of preference."""
    if not request.generate_audio:
        return SoundPlan("none")
    mentioned = _mentioned_audio(request)
    if mentioned:
        return SoundPlan("audio", mentioned)
    if request.audios:
        return SoundPlan("audio", (0,))
    for visual in visuals:
        if visual.kind == "video" and request.videos[visual.index].has_audio:
            return SoundPlan("video", (visual.index,))
    return SoundPlan("synth")


def _mentioned_audio(request: EngineRequest) -> tuple[int, ...]:
    found: list[int] = []
    for mention in parse_mentions(request.prompt):
        index = mention.index - 1
        if mention.kind == "audio" and 0 <= index < len(request.audios) and index not in found:
            found.append(index)
    return tuple(found)


def choose_seconds(request: EngineRequest, visuals: list[Visual]) -> int:
    """The video's length in whole seconds: the request's, or chosen for `duration: -1`.

    The soundtrack's audio reference sets it (the longest of those mentioned, else the
    first audio), else the videos' total, else three seconds a shot (five for text only),
    rounded and kept within 4-15 s. Audio references count even without `generate_audio`,
    since they still say how long the piece is meant to be.
    """
    if request.duration != AUTO_DURATION:
        return request.duration
    mentioned = _mentioned_audio(request)
    if mentioned:
        seconds = max(request.audios[i].duration for i in mentioned)
    elif request.audios:
        seconds = request.audios[0].duration
    elif request.videos:
        seconds = sum(video.duration for video in request.videos)
    elif visuals:
        seconds = IMAGE_SHOT_SECONDS * len(visuals)
    else:
        seconds = TEXT_ONLY_SECONDS
    return int(min(max(round(seconds), MIN_DURATION), MAX_DURATION))


def _weight(request: EngineRequest, visual: Visual) -> float:
    # A video shot's share follows its own length, so clips play near their natural speed.
    if visual.kind == "video":
        return min(max(request.videos[visual.index].duration, 1.0), 15.0)
    return IMAGE_SHOT_SECONDS


def _ambient_shot_count(prompt: str, frames: int) -> int:
    sentences = len(_SENTENCE.findall(prompt))
    return max(1, min(3, sentences, frames // (2 * FPS)))


def _allocate(frames: int, weights: list[float]) -> tuple[list[int], int]:
    """Shot lengths (overlapping by the crossfade) that tile exactly `frames`, and the fade.

    Every shot is at least twice the fade long, so two crossfades never overlap.
    """
    count = len(weights)
    fade = 0 if count == 1 else min(CROSSFADE_FRAMES, frames // (3 * count))
    total = frames + fade * (count - 1)
    minimum = 2 * fade + 1
    spare = total - minimum * count
    shares = np.asarray(weights, dtype=np.float64) / sum(weights) * spare
    lengths = np.floor(shares).astype(np.int64)
    # Largest remainders get the leftover frames; ties go to the earlier shot.
    leftover = spare - int(lengths.sum())
    for position in np.argsort(-(shares - lengths), kind="stable")[:leftover]:
        lengths[position] += 1
    return [int(length) + minimum for length in lengths], fade


def _clip_speed(clip_seconds: float, shot_seconds: float) -> float:
    """Play a clip a little faster or slower to fill its shot; beyond 2x, cut or hold."""
    if clip_seconds <= 0 or shot_seconds <= 0:
        return 1.0
    return float(min(max(clip_seconds / shot_seconds, MIN_CLIP_SPEED), MAX_CLIP_SPEED))
