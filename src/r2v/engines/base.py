"""The `Engine` protocol every renderer implements, and the typed request it renders.

A worker turns a stored task into an `EngineRequest` whose references are already fetched,
sniffed and probed; the engine renders an MP4 into its workspace, reporting progress through
the `RenderContext`, which is also where it learns that it must stop.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from r2v.grammar import adaptive_picture
from r2v.protocol import FPS, OUTPUT_SIZES, AspectRatio, FixedAspectRatio, Resolution

Preset = Literal["standard", "fast"]


@dataclass(frozen=True)
class ImageInput:
    """A reference image on local disk, already checked to be JPEG, PNG or WebP."""

    path: Path
    width: int
    height: int


@dataclass(frozen=True)
class VideoInput:
    """A reference video on local disk with at least one video stream."""

    path: Path
    width: int
    height: int
    duration: float
    fps: float
    has_audio: bool


@dataclass(frozen=True)
class AudioInput:
    """A reference audio clip on local disk (MP3 or WAV)."""

    path: Path
    duration: float


@dataclass(frozen=True)
class EngineRequest:
    """What to render. `images[0]` is `@Image1`, and so on for videos and audios."""

    model: str
    preset: Preset
    prompt: str
    resolution: Resolution
    aspect_ratio: AspectRatio
    duration: int
    """Seconds (4-15), or -1 for the engine to choose."""
    generate_audio: bool
    seed: int
    """A concrete seed, 0 or more: a seed of -1 was drawn before the request was built."""
    images: tuple[ImageInput, ...] = ()
    videos: tuple[VideoInput, ...] = ()
    audios: tuple[AudioInput, ...] = ()
    first_frame: int | None = None
    """0-based index into `images` of the picture the video must open on, exactly; it wins
    over a first frame the prompt's wording pins ("@Image1 as the first frame")."""
    last_frame: int | None = None
    """0-based index into `images` of the picture the video must end on, exactly (it may be
    `first_frame` too: the video then opens and closes on it)."""

    def __post_init__(self) -> None:
        for name, index in (("first_frame", self.first_frame), ("last_frame", self.last_frame)):
            if index is not None and not 0 <= index < len(self.images):
                raise ValueError(f"{name} {index} names no image of {len(self.images)}")


@dataclass(frozen=True)
class ShotSummary:
    """One shot as a person would describe it: a time range, a picture, a camera."""

    start: float
    """Seconds into the video where the shot takes over (the middle of a dissolve)."""
    end: float
    """Seconds where the next shot takes over, or the video ends."""
    shows: str
    """`@Image1`, `@Video2`, or what was drawn from the words without a reference: `the
    words: a sea at dawn`, `the words: an abstract scene`."""
    camera: str
    """The move (`push_in`, `pan_left`, ..., `static`), `follows @Video1` for a transferred
    camera, `the clip's own` for a reference video shown as filmed."""
    grade: str | None = None
    """The colour grade: a look, a time of day or both (`black_and_white night`); None
    when the picture is shown as it is."""
    weather: str | None = None
    """`rain`, `snow` or `fog` over the shot; None for clear weather."""
    words: str | None = None
    """The prompt's words the shot was read from; None for a picture the prompt never names."""
    clip_from: float | None = None
    """Video shots: the source second shown first."""
    clip_to: float | None = None
    """Video shots: the source second shown last."""
    clip_speed: float | None = None
    """Video shots: source seconds per second of the shot (1: as filmed; otherwise its
    frames are blended and its sound keeps its pitch)."""


@dataclass(frozen=True)
class SoundSummary:
    """One sound cue: what plays, when, and how."""

    plays: str
    """`@Audio1`, `@Video2` (that clip's own sound) or `score` (synthesized music)."""
    start: float
    end: float
    role: Literal["background", "narration", "clip"]
    """`background` spans the video under everything, `narration` is speech played once,
    `clip` starts under one shot."""
    loops: bool = False


@dataclass(frozen=True)
class RenderSummary:
    """What an engine made of a request: its shots, its sounds, and what it could not honour.

    Stored with the finished task as JSON (`to_json`), in the shape of the wire's
    `task_info.storyboard` and `task_info.warnings`.
    """

    shots: tuple[ShotSummary, ...] = ()
    sounds: tuple[SoundSummary, ...] = ()
    warnings: tuple[str, ...] = ()

    def to_json(self) -> str:
        """`{"shots": [...], "sounds": [...], "warnings": [...]}`, field names as above."""
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class EngineResult:
    """The rendered MP4 and what it holds."""

    path: Path
    width: int
    height: int
    frames: int
    fps: int = FPS
    has_audio: bool = True
    summary: RenderSummary | None = None
    """The storyboard and warnings, from an engine that plans one (None otherwise)."""

    @property
    def duration(self) -> float:
        return self.frames / self.fps


class RenderContext(Protocol):
    """What a running render may ask of the worker that runs it."""

    @property
    def workspace(self) -> Path:
        """A private directory for intermediate and output files; removed after the task."""
        ...

    def progress(self, fraction: float) -> None:
        """Report the share of the render done (0-1); call it between batches of work.

        This is where the render learns that it must stop, by an exception it lets
        propagate: `LeaseLost` when the task is no longer this attempt's (its owner
        cancelled or deleted it, or the reaper gave it to another worker: the worker checks
        twice a second, so a cancel shows here within about a second), `HandingBack` when
        the process is shutting down, `GenerationTimeout` past the render's time limit.
        """
        ...


class Engine(Protocol):
    """A renderer of reference-to-video requests."""

    name: str

    def estimate_seconds(self, request: EngineRequest) -> int:
        """A rough wall-clock estimate of `generate` for this request, in whole seconds."""
        ...

    def generate(self, request: EngineRequest, context: RenderContext) -> EngineResult:
        """Render the request into an MP4 inside `context.workspace` and describe it."""
        ...


@runtime_checkable
class Loadable(Protocol):
    """An engine with weights to load once per process, before its first task."""

    def load(self) -> None:
        """Load (and keep resident) whatever the engine needs; raise EngineUnavailable."""
        ...


@dataclass
class LocalContext:
    """A `RenderContext` that only records progress: for scripts, benchmarks and tests."""

    workspace: Path
    reported: list[float] = field(default_factory=list)

    def progress(self, fraction: float) -> None:
        self.reported.append(fraction)


def output_size(resolution: Resolution, aspect_ratio: FixedAspectRatio) -> tuple[int, int]:
    """The exact (width, height) of API.md's size table."""
    return OUTPUT_SIZES[resolution][aspect_ratio]


def nearest_aspect_ratio(width: int, height: int) -> FixedAspectRatio:
    """The table's ratio closest to width:height, compared on a log scale."""
    target = math.log(width / height)
    best: FixedAspectRatio = "16:9"
    best_distance = math.inf
    for ratio, (w, h) in OUTPUT_SIZES["720p"].items():
        distance = abs(math.log(w / h) - target)
        if distance < best_distance:
            best, best_distance = ratio, distance  # type: ignore[assignment]
    return best


def resolve_aspect_ratio(request: EngineRequest) -> FixedAspectRatio:
    """The request's ratio, with `adaptive` resolved as API.md says.

    Adaptive takes the shape of the picture `grammar.adaptive_picture` picks (the first
    one mentioned, else the first image, else the first video), else 16:9. Every engine
    sizes its video here, so they all agree.
    """
    if request.aspect_ratio != "adaptive":
        return request.aspect_ratio
    picture = adaptive_picture(request.prompt, request.images, request.videos)
    return "16:9" if picture is None else nearest_aspect_ratio(picture.width, picture.height)
