"""Frame sources: what draws the frames of one shot of the storyboard.

An image shot warps its prepared plate along the shot's camera move; a video shot reads
its clip forward at the shot's retimed clock and fits each frame by crop or pad; an ambient
shot draws seeded gradients. Sources are opened when their shot begins and closed when it
ends, so at most two (during a crossfade) hold memory or file handles at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from r2v.engines.base import EngineRequest
from r2v.engines.compositor.ambient import AmbientRenderer, make_scene
from r2v.engines.compositor.motion import interpolation, plate_size, render_view
from r2v.engines.compositor.storyboard import Shot, Storyboard
from r2v.errors import ReferenceInvalid
from r2v.media.decode import VideoFrameReader, load_image
from r2v.media.fit import FitPlan, apply_fit, fit_frame, plan_fit
from r2v.protocol import FPS

RGBFrame = NDArray[np.uint8]
"""An HxWx3 RGB or HxWx4 RGBA uint8 picture (alpha, when present, is ignored)."""


class FrameSource(Protocol):
    """Draws the frames of one shot."""

    def frame(self, index: int) -> RGBFrame:
        """The shot's picture at output frame `index` (increasing from call to call)."""
        ...

    def close(self) -> None:
        """Release files and buffers; the source is not used again."""
        ...


def prepare_plate(path: Path, label: str, board: Storyboard) -> RGBFrame:
    """Decode a reference image and fit it once to the plate its camera moves over.

    Large JPEGs decode at a reduced scale that is still at least the plate's size, and the
    plate is made with INTER_AREA, so each frame is only one warp of an image its own size.
    """
    plate = plate_size(board.size)
    try:
        image = load_image(path, draft_size=plate)
    except ReferenceInvalid as error:
        raise ReferenceInvalid(f"{label}: {error.message}") from error
    fitted = fit_frame(image, plate, interpolation=interpolation(board.preset))
    if board.preset == "fast":
        # OpenCV's bilinear warp has a vectorised path for four channels that runs about
        # twice as fast as for three; the encoder takes RGBA frames as they are.
        return cv2.cvtColor(fitted, cv2.COLOR_RGB2RGBA)  # type: ignore[return-value]
    return fitted


class ImageSource:
    """An image shot: the plate seen through the shot's camera move."""

    def __init__(self, shot: Shot, plate: RGBFrame, board: Storyboard) -> None:
        if shot.motion is None:
            raise ValueError("an image shot needs a camera move")
        self._shot, self._plate, self._motion = shot, plate, shot.motion
        self._size = board.size
        self._flags = interpolation(board.preset)

    def frame(self, index: int) -> RGBFrame:
        span = max(1, self._shot.length - 1)
        camera = self._motion.at((index - self._shot.start) / span)
        return render_view(self._plate, camera, self._size, flags=self._flags)

    def close(self) -> None:
        pass  # the plate belongs to the engine's prepared set


class VideoSource:
    """A video shot: the clip at the shot's clock, fitted by crop or pad."""

    def __init__(self, shot: Shot, path: Path, board: Storyboard) -> None:
        self._shot, self._size = shot, board.size
        self._flags = interpolation(board.preset)
        self._plan: FitPlan | None = None
        try:
            self._reader = VideoFrameReader(path)
        except ReferenceInvalid as error:
            raise ReferenceInvalid(f"{shot.label}: {error.message}") from error

    def frame(self, index: int) -> RGBFrame:
        try:
            picture = self._reader.frame_at(self._shot.clip_time(index))
        except ReferenceInvalid as error:
            raise ReferenceInvalid(f"{self._shot.label}: {error.message}") from error
        if self._plan is None:
            # Planned from the decoded frame, which has display rotation applied already.
            self._plan = plan_fit((picture.shape[1], picture.shape[0]), self._size)
        return apply_fit(picture, self._plan, interpolation=self._flags)

    def close(self) -> None:
        self._reader.close()


class AmbientSource:
    """A generated shot for a prompt without visual references."""

    def __init__(self, shot: Shot, board: Storyboard) -> None:
        scene = make_scene(board.prompt, board.seed, shot.index)
        self._shot = shot
        self._renderer = AmbientRenderer(scene, board.size, flags=interpolation(board.preset))

    def frame(self, index: int) -> RGBFrame:
        return self._renderer.frame((index - self._shot.start) / FPS)

    def close(self) -> None:
        pass


def open_source(
    shot: Shot, request: EngineRequest, board: Storyboard, plates: dict[int, RGBFrame]
) -> FrameSource:
    """The frame source of `shot`; image plates come from `plates`, prepared beforehand."""
    if shot.kind == "image":
        return ImageSource(shot, plates[shot.index], board)
    if shot.kind == "video":
        return VideoSource(shot, request.videos[shot.index].path, board)
    return AmbientSource(shot, board)
