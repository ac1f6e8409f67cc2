"""The compositor engine: references rendered into a real video without a neural model.

`generate` reads like a pipeline call: check and plan (the storyboard), prepare (image
plates, soundtrack), generate the frames, encode them as they come. Everything random is
drawn from generators seeded by the request's seed, so the same request renders the same
frames on any machine.

The frame loop draws one frame at a time from the live shots and hands it to the encoder,
so nothing but the open shots' sources and a few frames in flight is held in memory. Every
`PROGRESS_BATCH` frames it reports progress, which is also where a cancellation or timeout
arrives as an exception; the loop closes its sources on the way out and the writer deletes
the partial file.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2

from r2v.engines.base import EngineRequest, EngineResult, RenderContext
from r2v.engines.compositor.shots import FrameSource, RGBFrame, open_source, prepare_plate
from r2v.engines.compositor.sound import render_soundtrack
from r2v.engines.compositor.storyboard import Shot, Storyboard, build_storyboard
from r2v.media.encode import Mp4Writer

OUTPUT_NAME = "compositor.mp4"
PROGRESS_BATCH = 12
"""Frames between progress reports (half a second of video)."""

# Shares of the progress bar: decoding references and the soundtrack, then frames.
_PREPARE_SHARE = 0.05
_FRAMES_SHARE = 0.94

# Seconds per output megapixel-frame on a 2-core machine (measured), plus fixed costs.
_SECONDS_PER_MEGAPIXEL_FRAME = {"fast": 0.009, "standard": 0.03}
_SECONDS_PER_REFERENCE = 0.15
_FIXED_SECONDS = 0.3


class CompositorEngine:
    """Renders storyboards of the references with camera moves, crossfades and a soundtrack.

    Runs on any CPU; `preset` "fast" uses bilinear resampling and x264 superfast,
    "standard" bicubic resampling and x264 medium at a lower CRF.
    """

    name = "compositor"

    def estimate_seconds(self, request: EngineRequest) -> int:
        """A rough wall-clock estimate from frames x pixels, calibrated on a 2-core machine."""
        board = build_storyboard(request)
        megapixel_frames = board.frames * board.width * board.height / 1e6
        references = len(request.images) + len(request.videos) + len(request.audios)
        seconds = (
            _FIXED_SECONDS
            + megapixel_frames * _SECONDS_PER_MEGAPIXEL_FRAME[request.preset]
            + references * _SECONDS_PER_REFERENCE
        )
        return max(1, math.ceil(seconds))

    def plan(self, request: EngineRequest) -> Storyboard:
        """The storyboard `generate` would render, without drawing anything."""
        return build_storyboard(request)

    def generate(self, request: EngineRequest, context: RenderContext) -> EngineResult:
        """Render `request` into `compositor.mp4` in the context's workspace."""
        # 1. Check inputs and plan every shot, the length and the sound.
        board = build_storyboard(request)
        context.progress(0.0)

        # 2. Prepare: each image once, fitted to its plate; then the soundtrack.
        plates: dict[int, RGBFrame] = {}
        image_shots = [shot for shot in board.shots if shot.kind == "image"]
        for done, shot in enumerate(image_shots, start=1):
            reference = request.images[shot.index]
            plates[shot.index] = prepare_plate(reference.path, shot.label, board)
            context.progress(_PREPARE_SHARE * done / (len(image_shots) + 1))
        audio = render_soundtrack(board, request)
        context.progress(_PREPARE_SHARE)

        # 3. Generate the frames and 4. encode them as they come.
        path = context.workspace / OUTPUT_NAME
        with Mp4Writer(path, board.width, board.height, preset=board.preset, audio=audio) as out:
            render_frames(
                board,
                lambda shot: open_source(shot, request, board, plates),
                out,
                lambda share: context.progress(_PREPARE_SHARE + _FRAMES_SHARE * share),
            )
        context.progress(1.0)
        return EngineResult(
            path=path,
            width=board.width,
            height=board.height,
            frames=board.frames,
            has_audio=audio is not None,
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
    """How much of a fading-in `shot` shows at `frame`: strictly between 0 and 1."""
    return (frame - shot.start + 1) / (shot.fade_in + 1)


def render_frames(
    board: Storyboard,
    source_for: Callable[[Shot], FrameSource],
    writer: Mp4Writer,
    progress: Callable[[float], None],
) -> None:
    """Draw every frame of `board` into `writer`, reporting the share done to `progress`."""
    sources: dict[int, FrameSource] = {}
    try:
        for frame in range(board.frames):
            live = [n for n, shot in enumerate(board.shots) if shot.start <= frame < shot.end]
            for number in [n for n in sources if n not in live]:
                sources.pop(number).close()
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
            writer.write(picture)
            done = frame + 1
            if done % PROGRESS_BATCH == 0 or done == board.frames:
                progress(done / board.frames)
    finally:
        for source in sources.values():
            source.close()
