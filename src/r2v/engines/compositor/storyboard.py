"""The storyboard: every decision about a render, made before any pixel is drawn.

`build_storyboard` reads the prompt (`prompt.read_prompt`), casts its beats as shots and
sizes the video (`casting`), times the shots (`timeline`, with the music's onsets, clips
getting their own length), gives each image shot its camera move (`motion`, or a
reference video's camera through `transfer`), times each video clip (`playback`), and
plans the sound cues. The result is a plain, frozen `Storyboard` that tests can inspect
and that rendering only executes. A shot pinned to the first (last) frame starts (ends)
exactly on its whole picture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from r2v.engines.base import EngineRequest, Preset, output_size, resolve_aspect_ratio
from r2v.engines.compositor import timeline
from r2v.engines.compositor.casting import cast, choose_seconds, clip_frames, fit_count
from r2v.engines.compositor.grades import Grade
from r2v.engines.compositor.motion import Aim, MotionKind, MotionPath, cover_share, seeded_path
from r2v.engines.compositor.phrases import Pace, Weather
from r2v.engines.compositor.playback import plan_playback
from r2v.engines.compositor.prompt import SLOW_SPEED, Beat, Reading, read_prompt
from r2v.engines.compositor.references import ReferenceBank
from r2v.engines.compositor.scenery import ScenePlan, plan_scene
from r2v.engines.compositor.transfer import transferred_path
from r2v.grammar import Pin, sentence_texts
from r2v.protocol import FPS, FixedAspectRatio

ShotKind = Literal["image", "video", "ambient"]
CueSource = Literal["audio", "video", "score"]
CueRole = Literal["background", "shot"]

SAMPLES_PER_FRAME = 48000 // FPS

# Seed streams: each part of the plan draws from its own generator, so changing one part
# (say, adding a motion kind) leaves the others' draws, and their outputs, as they were.
STREAM_MOTION, STREAM_AMBIENT, STREAM_SOUND, STREAM_WEATHER = 1, 2, 3, 4


@dataclass(frozen=True)
class Shot:
    """One shot: a reference (or generated visuals) over a range of output frames.

    Frames `start` to `end - 1` belong to the shot; its first `fade_in` frames dissolve
    from the end of the previous shot (0: a hard cut).
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
    """Video shots: source seconds per output second (1: as filmed)."""
    pace: Pace | None = None
    """Video shots: the pace the prompt asked of the clip ("slow motion")."""
    pins: frozenset[Pin] = frozenset()
    """"first": frame 0 is exactly the whole picture; "last": so is the final frame."""
    text: str = ""
    """The prompt's words this shot was read from."""
    camera_of: int | None = None
    """The reference video whose camera motion the move follows."""
    scene: ScenePlan | None = None
    """Ambient shots: the place and light drawn from the words (None: an abstract scene)."""
    grade: Grade = Grade()
    """The colour grade (a drawn scene lights its own time of day: only its look is graded)."""
    weather: Weather | None = None
    """Rain, snow or fog over the shot."""

    @property
    def length(self) -> int:
        """Frames in the shot, its dissolves included."""
        return self.end - self.start

    @property
    def cut(self) -> int:
        """The frame where this shot takes over (the middle of its dissolve)."""
        return self.start + self.fade_in // 2

    @property
    def pin(self) -> Pin | None:
        """The pinned end, if one is ("first" when both are)."""
        return "first" if "first" in self.pins else ("last" if "last" in self.pins else None)

    @property
    def label(self) -> str:
        """How the prompt names the reference: `@Image2`, `@Video1`; `ambient` otherwise."""
        return "ambient" if self.kind == "ambient" else f"@{self.kind.capitalize()}{self.index + 1}"

    def clip_time(self, frame: int) -> float:
        """The source second a video shot shows at output `frame`."""
        return self.clip_start + (frame - self.start) / FPS * self.clip_speed


@dataclass(frozen=True)
class SoundCue:
    """One sound on the timeline: a reference clip, a video's own sound, or the score.

    It plays over output frames `start` to `end - 1`, from `offset` seconds into its
    source, at `speed`; "background" cues span the video. Music (background cues that are
    not speech) dips wherever a speech or "shot" cue is heard.
    """

    source: CueSource
    index: int
    start: int
    end: int
    role: CueRole
    offset: float = 0.0
    speed: float = 1.0
    loop: bool = False
    speech: bool = False
    """A voice ("narration", "旁白"): played once, and the music dips under it."""

    @property
    def label(self) -> str:
        """`@Audio1`, `@Video2`, or `score`."""
        return "score" if self.source == "score" else f"@{self.source.capitalize()}{self.index + 1}"


@dataclass(frozen=True)
class SoundPlan:
    """The soundtrack's cues (none: no audio stream), and the music's onsets (seconds)."""

    cues: tuple[SoundCue, ...] = ()
    onsets: tuple[float, ...] = ()

    @property
    def source(self) -> Literal["none", "audio", "video", "synth"]:
        """Where the sound mainly comes from."""
        sources = {cue.source for cue in self.cues}
        if not sources:
            return "none"
        return "audio" if "audio" in sources else ("video" if "video" in sources else "synth")

    @property
    def indices(self) -> tuple[int, ...]:
        """The audio references used, in cue order."""
        return tuple(dict.fromkeys(c.index for c in self.cues if c.source == "audio"))


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
    aspect_ratio: FixedAspectRatio = "16:9"

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the output."""
        return (self.width, self.height)

    @property
    def seconds(self) -> int:
        """The video's length in whole seconds."""
        return self.frames // FPS

    def live(self, frame: int) -> tuple[Shot, ...]:
        """The shots on screen at `frame`: one, or two during a dissolve (older first)."""
        return tuple(shot for shot in self.shots if shot.start <= frame < shot.end)


def build_storyboard(request: EngineRequest, bank: ReferenceBank | None = None) -> Storyboard:
    """Plan the render of `request`: size, length, shots, moves and sound, all seeded.

    `bank` supplies decoded audio (for onsets) and camera tracks; one is made when absent.
    """
    bank = bank or ReferenceBank(request)
    reading = read_prompt(
        request.prompt, len(request.images), len(request.videos), len(request.audios)
    )
    beats = cast(request, reading)
    frames = choose_seconds(request, reading, beats) * FPS
    beats = fit_count(beats, frames)
    ratio = resolve_aspect_ratio(request)
    width, height = output_size(request.resolution, ratio)
    background, placed = audio_roles(request, reading, beats)
    onsets: list[float] = []
    if request.generate_audio and background:
        onsets = [t for t, _ in bank.onsets(background, frames * SAMPLES_PER_FRAME)]
    count = len(beats) or _ambient_count(reading.sentences, frames)
    weights = [b.weight for b in beats] or [1.0] * count
    natural = clip_frames(request, beats) or [None] * count
    cuts = timeline.cut_points(
        frames, weights, [b.seconds for b in beats] or [None] * count, natural
    )
    snapped = [False] * len(cuts)
    if onsets and beats:
        least = timeline.shortest_shot(frames, count)
        cuts, snapped = timeline.snap_to_onsets(cuts, onsets, frames, least, natural)
    spans = timeline.spans(cuts, snapped, frames)
    if beats:
        shots = _shots(request, reading, bank, beats, spans, (width, height))
    else:
        shots = _drawn_shots(request, reading, spans)
    sound = plan_sound(request, shots, background, placed, frames, reading.spoken)
    return Storyboard(
        width, height, frames, request.seed, request.preset, shots,
        replace(sound, onsets=tuple(onsets)), request.prompt, ratio,
    )  # fmt: skip


def audio_roles(
    request: EngineRequest, reading: Reading, beats: list[Beat]
) -> tuple[list[int], list[tuple[int, int]]]:
    """Which audio clips span the video, and which start under which beat (position, clip).

    With no clip named, every clip spans the video; a named clip that ended up under no
    shown beat spans it too.
    """
    if not request.audios:
        return [], []
    if not reading.audios:
        return list(range(len(request.audios))), []
    background = list(reading.background)
    placed = [
        (position, clip)
        for position, beat in enumerate(beats)
        for clip in beat.audios
        if clip not in background
    ]
    heard = set(background) | {clip for _, clip in placed}
    background += [clip for clip in reading.audios if clip not in heard]
    return background, placed


def plan_sound(
    request: EngineRequest,
    shots: tuple[Shot, ...],
    background: list[int],
    placed: list[tuple[int, int]],
    frames: int,
    spoken: tuple[int, ...] = (),
) -> SoundPlan:
    """The soundtrack's cues: reference audio where the prompt puts it (music looped under
    the whole video, speech once) and each video shot's own sound under it; with no audio
    references, a synthesized score under everything that dips under the videos' sound."""
    if not request.generate_audio:
        return SoundPlan()
    cues = [
        SoundCue(
            "audio", clip, 0, frames, "background", loop=clip not in spoken, speech=clip in spoken
        )
        for clip in background
    ]
    starts = [shots[position].cut for position, _ in placed]
    for number, (_, clip) in enumerate(placed):
        start = starts[number]
        later = [s for s in starts[number + 1 :] if s > start]
        until = min([*later, frames, start + math.ceil(request.audios[clip].duration * FPS)])
        if until > start:
            cues.append(SoundCue("audio", clip, start, until, "shot", speech=clip in spoken))
    for shot in shots:
        if shot.kind == "video" and request.videos[shot.index].has_audio:
            cues.append(
                SoundCue(
                    "video",
                    shot.index,
                    shot.start,
                    shot.end,
                    "shot",
                    offset=shot.clip_start,
                    speed=shot.clip_speed,
                )
            )
    if not request.audios:
        cues.append(SoundCue("score", 0, 0, frames, "background"))
    return SoundPlan(tuple(cues))


def _shots(
    request: EngineRequest,
    reading: Reading,
    bank: ReferenceBank,
    beats: list[Beat],
    spans: list[timeline.Span],
    size: tuple[int, int],
) -> tuple[Shot, ...]:
    rng = np.random.default_rng([request.seed, STREAM_MOTION])
    previous: MotionKind | None = None
    shots: list[Shot] = []
    for position, (beat, span) in enumerate(zip(beats, spans, strict=True)):
        opens = position == 0 and "first" in beat.pins
        closes = position == len(beats) - 1 and "last" in beat.pins
        pinned: set[Pin] = set()
        if opens:
            pinned.add("first")
        if closes:
            pinned.add("last")
        pins = frozenset(pinned)
        base = Shot(beat.kind, beat.index, span.start, span.end, span.fade_in, pins=pins)
        base = replace(base, text=beat.text, grade=beat.grade.over(reading.grade),
                       weather=beat.weather or reading.weather)  # fmt: skip
        if beat.kind == "image":
            source = beat.camera_of
            if source is None and beat.move is None:
                source = reading.camera_of
            seconds = (span.end - span.start) / FPS
            # A pinned picture padded to fit (a portrait in a landscape frame) is entered
            # after its pinned frame, so that it fills the frame.
            picture = request.images[beat.index]
            cover = cover_share((picture.width, picture.height), size) if pins else 1.0
            if source is not None:
                motion = transferred_path(
                    bank.camera(source), seconds=seconds, from_rest=opens, to_rest=closes,
                    cover=cover,
                )  # fmt: skip
            else:
                move = beat.move or reading.move
                motion = seeded_path(
                    rng, move.kind if move else None, speed=move.speed if move else 1.0,
                    seconds=seconds, from_rest=opens, to_rest=closes, avoid=previous,
                    cover=cover, aim=_aim(bank, beat, reading, size),
                )  # fmt: skip
            previous = motion.kind
            shots.append(replace(base, motion=motion, camera_of=source))
        else:
            seconds = request.videos[beat.index].duration
            play = plan_playback(seconds, span.end - span.start, beat.pace, closes=closes)
            shots.append(
                replace(base, clip_start=play.start, clip_speed=play.speed, pace=beat.pace)
            )
    return tuple(shots)


def _drawn_shots(
    request: EngineRequest, reading: Reading, spans: list[timeline.Span]
) -> tuple[Shot, ...]:
    """Shots drawn from the words, one for each run of sentences: each shows the scene its
    sentences name (the whole prompt's where they name none) under the camera move they
    ask for, else a slow pan across it (one way, then the other: a pan costs a frame a
    fraction of a zoom's warp); a prompt that names no place is drawn as an abstract
    scene, which holds its camera still."""
    scenes = np.random.default_rng([request.seed, STREAM_AMBIENT])
    moves = np.random.default_rng([request.seed, STREAM_MOTION])
    shots: list[Shot] = []
    previous: MotionKind | None = None
    for number, (span, text) in enumerate(zip(spans, _sentence_runs(request.prompt, len(spans)),
                                              strict=True)):  # fmt: skip
        scene = plan_scene(text, request.prompt, scenes)
        shot = Shot(
            "ambient", number, span.start, span.end, span.fade_in, text=text, scene=scene,
            grade=reading.grade, weather=reading.weather,
        )  # fmt: skip
        move = read_prompt(text, 0, 0, 0).move or reading.move
        gentle: list[MotionKind] = [k for k in ("pan_left", "pan_right") if k != previous]
        drawn = gentle[int(moves.integers(len(gentle)))]
        if scene is not None:
            seconds = (span.end - span.start) / FPS
            kind, speed = (move.kind, move.speed) if move else (drawn, SLOW_SPEED)
            motion = seeded_path(moves, kind, speed=speed, seconds=seconds)
            shot, previous = replace(shot, motion=motion), motion.kind
        shots.append(shot)
    return tuple(shots)


def _sentence_runs(prompt: str, count: int) -> list[str]:
    """The prompt's sentences shared out in order among `count` shots."""
    sentences = sentence_texts(prompt) or [prompt.strip()]
    runs = [sentences[n * len(sentences) // count : (n + 1) * len(sentences) // count]
            for n in range(count)]  # fmt: skip
    return [". ".join(run) for run in runs]


def _aim(bank: ReferenceBank, beat: Beat, reading: Reading, size: tuple[int, int]) -> Aim | None:
    """Where an image shot's move ends: the side its words name, else its subject."""
    move = beat.move or reading.move
    if move is not None and move.kind in ("static", "drift"):
        return None
    sides = beat.where or reading.where
    if sides:
        return Aim.at_sides(sides)
    subject = bank.subject(beat.index, size)
    return None if subject is None else Aim(*subject, closer=True)


def _ambient_count(sentences: int, frames: int) -> int:
    return max(1, min(3, sentences, frames // (2 * FPS)))
