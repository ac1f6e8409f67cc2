"""The shape of one render: what the model generates, and how it becomes the API's video.

Wan generates pictures whose sides are multiples of 16 (the VAE's 8x8 times the
transformer's 2x2 patches) and clips of 4k+1 frames (the VAE's 4x time compression plus
the first frame) at its own frame rate. The plan picks the generation size nearest the
output's shape within the model's area, the frame count that covers the duration, and,
for clips longer than one pass, overlapping segments. The frames are then fitted to the
exact output size and retimed to 24 fps by taking, for each output frame, the generated
frame showing at that moment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from r2v.engines.base import EngineRequest, output_size, resolve_aspect_ratio
from r2v.engines.diffusers.config import GenerationLimits, Sampling
from r2v.grammar import find_mentions
from r2v.protocol import FPS, MAX_DURATION, MIN_DURATION

SIZE_MULTIPLE = 16
DEFAULT_SECONDS = 5
"""`duration: -1` with no audio or video to follow: Wan's native clip length."""


@dataclass(frozen=True)
class Segment:
    """One pass of the model: `frames` (4k+1) generated frames starting at `start`."""

    start: int
    frames: int

    @property
    def end(self) -> int:
        return self.start + self.frames


@dataclass(frozen=True)
class RenderPlan:
    """Sizes, lengths and passes of one render."""

    width: int
    height: int
    """The exact output size of API.md's table."""
    gen_width: int
    gen_height: int
    seconds: int
    fps: int
    """The rate the model generates at."""
    gen_frames: int
    """Generated frames the output needs (the last segment may make a few more)."""
    segments: tuple[Segment, ...]
    sampling: Sampling

    @property
    def frames(self) -> int:
        """Output frames: exactly `seconds` x 24."""
        return self.seconds * FPS

    @property
    def steps(self) -> int:
        """Denoising steps over all segments."""
        return self.sampling.steps * len(self.segments)

    def source_frame(self, index: int) -> int:
        """The generated frame showing at output frame `index` (nearest in time)."""
        return min(self.gen_frames - 1, math.floor(index * self.fps / FPS + 0.5))


def choose_seconds(request: EngineRequest) -> int:
    """The request's duration; for -1, the mentioned (else first) audio's, else the video's.

    Lengths are rounded to whole seconds within the API's 4-15; with no clip to follow,
    the model's native 5 s.
    """
    if request.duration > 0:
        return request.duration
    mentioned = find_mentions(request.prompt, {"audio": len(request.audios)})
    audio = [request.audios[m.index - 1] for m in mentioned] or list(request.audios[:1])
    if audio:
        length = max(clip.duration for clip in audio)
    elif request.videos:
        length = request.videos[0].duration
    else:
        return DEFAULT_SECONDS
    return max(MIN_DURATION, min(MAX_DURATION, round(length)))


def generation_size(output: tuple[int, int], max_area: int) -> tuple[int, int]:
    """(width, height) in multiples of 16, of the output's shape, at most `max_area`.

    An output within the area is generated at its own size rounded to multiples of 16 (the
    API's sizes already are); a larger one is scaled down to the area. Of the nearby sizes,
    the one closest in shape and area wins (shape counting double).
    """
    width, height = output
    target = min(max_area, width * height)
    scale = math.sqrt(target / (width * height))
    best: tuple[float, int, int] | None = None
    for w in _near(width * scale):
        for h in _near(height * scale):
            if w * h > max_area:
                continue
            miss = abs(math.log(w / h * height / width)) + 0.5 * abs(math.log(w * h / target))
            if best is None or miss < best[0]:
                best = (miss, w, h)
    if best is None:
        return SIZE_MULTIPLE, SIZE_MULTIPLE
    return best[1], best[2]


def _near(side: float) -> list[int]:
    below = max(1, math.floor(side / SIZE_MULTIPLE))
    return [SIZE_MULTIPLE * k for k in range(max(1, below - 1), below + 3)]


def clip_frames(wanted: int) -> int:
    """The smallest 4k+1 frame count of at least `wanted` frames."""
    return 4 * math.ceil(max(0, wanted - 1) / 4) + 1


def plan_segments(total: int, max_frames: int, overlap: int) -> tuple[Segment, ...]:
    """Passes covering `total` frames, each at most `max_frames`, overlapping by `overlap`.

    Each later pass starts `overlap` frames before the previous one ends and is conditioned
    on those frames, so the joins continue the motion instead of cutting.
    """
    overlap = max(1, min(overlap, max_frames - 4))
    segments: list[Segment] = []
    start = 0
    while True:
        frames = min(max_frames, clip_frames(total - start))
        segments.append(Segment(start, frames))
        if start + frames >= total:
            return tuple(segments)
        start += frames - overlap


def make_plan(
    request: EngineRequest, limits: GenerationLimits, sampling: Sampling, overlap: int
) -> RenderPlan:
    """Everything `generate` needs to know about the shape of this request's render."""
    width, height = output_size(request.resolution, resolve_aspect_ratio(request))
    gen_width, gen_height = generation_size((width, height), limits.max_area)
    seconds = choose_seconds(request)
    # The last output frame shows at (frames - 1) / 24 s; generate through that moment.
    last = math.floor((seconds * FPS - 1) * limits.fps / FPS + 0.5)
    gen_frames = last + 1
    return RenderPlan(
        width=width,
        height=height,
        gen_width=gen_width,
        gen_height=gen_height,
        seconds=seconds,
        fps=limits.fps,
        gen_frames=gen_frames,
        segments=plan_segments(gen_frames, limits.max_frames, overlap),
        sampling=sampling,
    )
