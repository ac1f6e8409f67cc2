"""Frame sources: what draws the frames of one shot of the storyboard.

An image shot warps its picture's plate along the shot's camera move (with motion blur on
fast moves in the standard preset), and shows the picture itself, fitted to the frame, on
a pinned first or last frame; a video shot reads its clip forward at the shot's retimed
clock and fits each frame by crop or pad; an ambient shot draws seeded gradients. Sources
open when their shot begins and close when it ends, and `Plates` prepares each picture
when its first shot opens (or just before the video shots it overlaps) and lets it go
after its last, so memory holds at most the pictures of the shots on screen and any
shown again later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from r2v.engines.base import EngineRequest
from r2v.engines.compositor.ambient import AmbientRenderer, make_scene
from r2v.engines.compositor.motion import (
    PLATE_LIMIT,
    REST,
    exposure,
    interpolation,
    plate_size,
    render_exposure,
    render_view,
)
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


@dataclass(frozen=True)
class Plate:
    """A picture prepared for its camera moves, and for a pinned frame its exact framing."""

    picture: RGBFrame
    rest: RGBFrame | None = None


def prepare_plate(
    request: EngineRequest, index: int, board: Storyboard, scale: float, *, rest: bool
) -> Plate:
    """Decode `@Image{index+1}` and fit it once to a plate `scale` times the output size.

    Large JPEGs decode at a reduced scale still at least the plate's size, and the plate is
    made with INTER_AREA, so each frame is only one warp of an image its own size. Plates
    are RGBA: OpenCV's warps have vectorised four-channel paths (bilinear about twice as
    fast as for three channels, bicubic a quarter faster), and the encoder takes RGBA
    frames as they are.
    """
    size = plate_size(board.size, scale)
    try:
        image = load_image(request.images[index].path, draft_size=size)
    except ReferenceInvalid as error:
        raise ReferenceInvalid(f"@Image{index + 1}: {error.message}") from error
    flags = interpolation(board.preset)
    plate = fit_frame(image, size, interpolation=flags)
    whole = fit_frame(image, board.size, interpolation=flags) if rest else None
    plate = cv2.cvtColor(plate, cv2.COLOR_RGB2RGBA)  # type: ignore[assignment]
    if whole is not None:
        whole = cv2.cvtColor(whole, cv2.COLOR_RGB2RGBA)  # type: ignore[assignment]
    return Plate(plate, whole)


class Plates:
    """The image plates of a render: each prepared when its picture's first shot opens,
    at the tightest zoom any of its shots uses, and dropped after its last shot.

    Preparing a plate may decode a large picture at full size for a moment; so that this
    never happens while a reference video's decoder is open too, the plates of the image
    shots that begin during a run of overlapping video shots are prepared just before the
    run's first video opens (`prepare_ahead`).
    """

    def __init__(self, request: EngineRequest, board: Storyboard) -> None:
        self._request, self._board = request, board
        self._scale: dict[int, float] = {}
        self._last: dict[int, int] = {}
        self._rest: set[int] = set()
        self._ready: dict[int, Plate] = {}
        self._ahead: dict[Shot, list[int]] = {}
        run: list[int] = []  # the plates to prepare before the current run of videos
        run_end = 0  # where that run ends: no video is open from here until the next run
        for shot in board.shots:
            if shot.kind == "video" and shot.start >= run_end:
                run, run_end = self._ahead.setdefault(shot, []), shot.end
            elif shot.kind == "video":
                run_end = max(run_end, shot.end)
            elif shot.kind == "image" and shot.start < run_end:
                run.append(shot.index)
        for number, shot in enumerate(board.shots):
            if shot.kind != "image" or shot.motion is None:
                continue
            zoom = min(max(shot.motion.max_zoom, 1.0), PLATE_LIMIT)
            self._scale[shot.index] = max(self._scale.get(shot.index, 1.0), zoom)
            self._last[shot.index] = number
            if shot.pins:
                self._rest.add(shot.index)

    def take(self, index: int) -> Plate:
        """The plate of `@Image{index+1}`, prepared on first use."""
        if index not in self._ready:
            self._ready[index] = prepare_plate(
                self._request, index, self._board, self._scale.get(index, 1.0),
                rest=index in self._rest,
            )  # fmt: skip
        return self._ready[index]

    def prepare_ahead(self, shot: Shot) -> None:
        """Prepare the plates that must not be prepared once `shot`, a video, is open."""
        for index in self._ahead.get(shot, ()):
            self.take(index)

    def release(self, number: int) -> None:
        """Drop the plates no shot after shot `number` uses."""
        for index in [i for i in self._ready if self._last.get(i, -1) <= number]:
            del self._ready[index]

    @property
    def held(self) -> int:
        """How many plates are in memory."""
        return len(self._ready)


class ImageSource:
    """An image shot: the plate seen through the shot's camera move."""

    def __init__(self, shot: Shot, plate: Plate, board: Storyboard) -> None:
        if shot.motion is None:
            raise ValueError("an image shot needs a camera move")
        self._shot, self._plate, self._motion = shot, plate, shot.motion
        self._size = board.size
        self._flags = interpolation(board.preset)
        self._blur = board.preset == "standard"
        self._span = max(1, shot.length - 1)

    def frame(self, index: int) -> RGBFrame:
        progress = (index - self._shot.start) / self._span
        camera = self._motion.at(progress)
        if self._plate.rest is not None and camera == REST:
            return self._plate.rest  # a pinned frame: the picture itself, exactly
        picture = self._plate.picture
        if self._blur:
            plate = (picture.shape[1], picture.shape[0])
            cameras = exposure(self._motion, progress, 1 / self._span, plate, self._size)
            return render_exposure(picture, cameras, self._size, flags=self._flags)
        return render_view(picture, camera, self._size, flags=self._flags)

    def close(self) -> None:
        pass  # the plate belongs to `Plates`


class VideoSource:
    """A video shot: the clip at the shot's clock, fitted by crop or pad."""

    def __init__(self, shot: Shot, request: EngineRequest, board: Storyboard) -> None:
        self._shot, self._size = shot, board.size
        self._flags = interpolation(board.preset)
        self._plan: FitPlan | None = None
        try:
            self._reader = VideoFrameReader(request.videos[shot.index].path, draft_size=self._size)
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
    shot: Shot, request: EngineRequest, board: Storyboard, plates: Plates
) -> FrameSource:
    """The frame source of `shot`; image plates come from `plates`."""
    if shot.kind == "image":
        return ImageSource(shot, plates.take(shot.index), board)
    if shot.kind == "video":
        plates.prepare_ahead(shot)
        return VideoSource(shot, request, board)
    return AmbientSource(shot, board)
