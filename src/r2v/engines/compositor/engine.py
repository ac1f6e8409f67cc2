"""The compositor engine: references rendered into a real video without a neural model.

`generate` reads like a pipeline call: plan (the storyboard: prompt, shots, moves, sound),
prepare the soundtrack (beside the first frames), generate the frames, encode them as they
come. Everything random is drawn from generators seeded by the request's seed, so the same
request renders the same frames on any machine.

The frame loop draws one frame at a time from the live shots and hands it to the encoder,
so nothing but the open shots' sources, their pictures and a few frames in flight is held
in memory. Every `PROGRESS_BATCH` frames it reports progress, which is also where a
cancellation or timeout arrives as an exception; the loop closes its sources on the way
out and the writer deletes the partial file.

What the plan made of the request, as the finished task reports it, is `summary`'s.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import cv2

from r2v.engines.base import (
    EngineRequest,
    EngineResult,
    RenderContext,
    output_size,
    resolve_aspect_ratio,
)
from r2v.engines.compositor.casting import (
    cast,
    choose_seconds,
)
from r2v.engines.compositor.finish import Finish
from r2v.engines.compositor.prompt import read_prompt
from r2v.engines.compositor.references import ReferenceBank
from r2v.engines.compositor.shots import FrameSource, Plates, RGBFrame, open_source
from r2v.engines.compositor.sound import encode_soundtrack
from r2v.engines.compositor.storyboard import Shot, Storyboard, build_storyboard
from r2v.engines.compositor.summary import summarize
from r2v.media.encode import Mp4Writer
from r2v.protocol import FPS

OUTPUT_NAME = "compositor.mp4"
PROGRESS_BATCH = 12
"""Frames between progress reports (half a second of video)."""

# Shares of the progress bar: planning (with any reference analysis), then the frames.
_PLAN_SHARE = 0.04
_FRAMES_SHARE = 0.95

# Seconds per output megapixel-frame on a 2-core machine, plus fixed costs: measured by
# bench/presets.py (standard takes about 1.3x fast's time).
_SECONDS_PER_MEGAPIXEL_FRAME = {"fast": 0.006, "standard": 0.008}
_SECONDS_PER_REFERENCE = 0.15
_FIXED_SECONDS = 0.3


class CompositorEngine:
    """Renders storyboards of the references with camera moves, dissolves and a soundtrack.

    Runs on any CPU. Both presets warp with bilinear sampling. "fast" blurs only whip-speed
    camera moves and encodes with the fastest x264 settings; "standard" blurs any move of a
    pixel or more a frame and encodes with x264's next preset up, which makes files about
    half the size at the same or better quality for about 1.3x fast's time
    (bench/presets.py).
    """

    name = "compositor"

    def estimate_seconds(self, request: EngineRequest) -> int:
        """A rough wall-clock estimate from frames x pixels, calibrated on a 2-core machine."""
        counts = (len(request.images), len(request.videos), len(request.audios))
        reading = read_prompt(request.prompt, *counts)
        seconds = choose_seconds(request, reading, cast(request, reading))
        width, height = output_size(request.resolution, resolve_aspect_ratio(request))
        megapixel_frames = seconds * FPS * width * height / 1e6
        estimate = (
            _FIXED_SECONDS
            + megapixel_frames * _SECONDS_PER_MEGAPIXEL_FRAME[request.preset]
            + sum(counts) * _SECONDS_PER_REFERENCE
        )
        return max(1, math.ceil(estimate))

    def plan(self, request: EngineRequest) -> Storyboard:
        """The storyboard `generate` would render, without drawing anything."""
        return build_storyboard(request)

    def generate(self, request: EngineRequest, context: RenderContext) -> EngineResult:
        """Render `request` into `compositor.mp4` in the context's workspace."""
        # 1. Check inputs and plan every shot, move, cut and sound.
        context.progress(0.0)
        # Analysing a reference video can take seconds: a cancellation may arrive meanwhile.
        bank = ReferenceBank(request, checkpoint=lambda: context.progress(0.0))
        board = build_storyboard(request, bank)
        summary = summarize(request, board)
        context.progress(_PLAN_SHARE)

        # 2. Prepare: the soundtrack is mixed and coded on a thread of its own while the
        # first frames are drawn (the writer muxes it when it is ready); pictures are
        # prepared as their shots begin.
        path = context.workspace / OUTPUT_NAME
        plates = Plates(request, board)
        finish = Finish(board)
        with ThreadPoolExecutor(1, thread_name_prefix="r2v-sound") as sound:
            audio = sound.submit(encode_soundtrack, board, bank) if board.sound.cues else None

            # 3. Generate the frames and 4. encode them as they come.
            with Mp4Writer(
                path, board.width, board.height, preset=board.preset, audio=audio
            ) as out:
                render_frames(
                    board,
                    lambda shot: finish.wrap(shot, open_source(shot, request, board, plates)),
                    out.write,
                    lambda share: context.progress(_PLAN_SHARE + _FRAMES_SHARE * share),
                    on_shot_closed=plates.release,
                )
        context.progress(1.0)
        return EngineResult(
            path=path,
            width=board.width,
            height=board.height,
            frames=board.frames,
            has_audio=audio is not None,
            summary=summary,
        )


def crossfade(older: RGBFrame, newer: RGBFrame, weight: float) -> RGBFrame:
    """`newer` over `older` at `weight` (0-1), one vectorised pass; RGB if either is RGB."""
    if older.shape[2] != newer.shape[2]:
        older, newer = _rgb(older), _rgb(newer)
    return cv2.addWeighted(older, 1.0 - weight, newer, weight, 0.0)  # type: ignore[return-value]


def _rgb(frame: RGBFrame) -> RGBFrame:
    if frame.shape[2] == 3:
        return frame
    return cv2.cvtColor(frame, cv2.COLOR_RGBA2RGB)  # type: ignore[return-value]


def fade_weight(shot: Shot, frame: int) -> float:
    """How much of a dissolving-in `shot` shows at `frame`: strictly between 0 and 1."""
    return (frame - shot.start + 1) / (shot.fade_in + 1)


def render_frames(
    board: Storyboard,
    source_for: Callable[[Shot], FrameSource],
    write: Callable[[RGBFrame], None],
    progress: Callable[[float], None],
    *,
    on_shot_closed: Callable[[int], None] = lambda _number: None,
) -> None:
    """Draw every frame of `board` into `write`, reporting the share done to `progress`
    after each batch of frames (where a cancellation surfaces as an exception)."""
    sources: dict[int, FrameSource] = {}
    first_live = 0
    try:
        for frame in range(board.frames):
            while board.shots[first_live].end <= frame:
                first_live += 1
            live = [
                n
                for n in range(first_live, min(first_live + 2, len(board.shots)))
                if board.shots[n].start <= frame < board.shots[n].end
            ]
            for number in [n for n in sources if n not in live]:
                sources.pop(number).close()
                on_shot_closed(number)
            pictures: list[RGBFrame] = []
            for number in live:
                if number not in sources:
                    sources[number] = source_for(board.shots[number])
                pictures.append(sources[number].frame(frame))
            picture = pictures[-1]
            if len(pictures) == 2:
                picture = crossfade(
                    pictures[0], pictures[1], fade_weight(board.shots[live[1]], frame)
                )
            write(picture)
            done = frame + 1
            if done % PROGRESS_BATCH == 0 or done == board.frames:
                progress(done / board.frames)
    finally:
        for source in sources.values():
            source.close()
