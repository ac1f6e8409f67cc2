"""The pictures VACE is conditioned on: reference images, and frames with their mask.

VACE takes three kinds of visual input. `reference_images` show subjects and styles to
keep (they are encoded as extra latent frames before the clip). `video` is a frame per
generated frame, and `mask` says, per pixel, whether the model must keep that frame's
content (0) or generate there, guided by it (1). The engine uses them as follows:

- every reference image that is not pinned to a frame becomes a reference image, scaled to
  fit the generation size and centred on white, the layout VACE was trained on;
- the followed reference video gives the frames at the moments they show, mask 1: the
  clip guides layout and motion while the prompt and references restyle it;
- an image pinned as the first or last frame is that frame, fitted by crop or pad, mask 0;
- frames with nothing to follow are mid-grey, mask 1 (free generation);
- a later segment keeps (mask 0) the frames it repeats from the one before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from r2v.engines.base import EngineRequest
from r2v.engines.diffusers.plan import RenderPlan, Segment
from r2v.engines.diffusers.prompt import Pins
from r2v.errors import ReferenceInvalid
from r2v.media.decode import VideoFrameReader, load_image
from r2v.media.fit import fit_frame, resize

RGBFrame = NDArray[np.uint8]

GREY = 128
"""Unconditioned frames: the middle of the range, which VACE's preprocessing maps to 0."""
_WHITE = 255


@dataclass
class Conditioning:
    """One conditioning frame (None: nothing to follow) and keep-flag per generated frame."""

    frames: list[RGBFrame | None]
    keep: list[bool]

    @property
    def empty(self) -> bool:
        """True when nothing conditions any frame: the model generates freely."""
        return all(frame is None for frame in self.frames)


def reference_plate(picture: RGBFrame, size: tuple[int, int]) -> RGBFrame:
    """`picture` scaled to fit inside `size` (width, height), centred on white."""
    width, height = size
    scale = min(width / picture.shape[1], height / picture.shape[0])
    fitted = (max(1, round(picture.shape[1] * scale)), max(1, round(picture.shape[0] * scale)))
    plate = np.full((height, width, 3), _WHITE, dtype=np.uint8)
    left, top = (width - fitted[0]) // 2, (height - fitted[1]) // 2
    plate[top : top + fitted[1], left : left + fitted[0]] = resize(picture, fitted)
    return plate


def reference_images(request: EngineRequest, plan: RenderPlan, pins: Pins) -> list[Image.Image]:
    """The reference images VACE keeps in view: every image not pinned to a frame."""
    size = (plan.gen_width, plan.gen_height)
    plates: list[Image.Image] = []
    for index in range(len(request.images)):
        if index in pins.images:
            continue
        picture = _load(request, index, size)
        plates.append(Image.fromarray(reference_plate(picture, size)))
    return plates


def conditioning(
    request: EngineRequest, plan: RenderPlan, pins: Pins, video: int | None
) -> Conditioning:
    """Conditioning frames over the whole clip: the followed video, then the pinned frames."""
    size = (plan.gen_width, plan.gen_height)
    count = plan.segments[-1].end
    frames: list[RGBFrame | None] = [None] * count
    keep = [False] * count
    if video is not None:
        clip = request.videos[video]
        with VideoFrameReader(clip.path) as reader:
            for index in range(count):
                seconds = index / plan.fps
                if seconds >= clip.duration:
                    break  # past its end the clip guides nothing: free generation
                frames[index] = fit_frame(reader.frame_at(seconds), size)
    if pins.first is not None:
        frames[0], keep[0] = fit_frame(_load(request, pins.first, size), size), True
    if pins.last is not None:
        # The last frame the output shows, not the last the final segment happens to make.
        last = plan.gen_frames - 1
        frames[last], keep[last] = fit_frame(_load(request, pins.last, size), size), True
    return Conditioning(frames, keep)


def segment_inputs(
    whole: Conditioning, segment: Segment, carried: list[RGBFrame]
) -> tuple[list[Image.Image], list[Image.Image]] | None:
    """The `video` and `mask` of one segment, or None when nothing conditions it.

    `carried` are the frames this segment repeats from the previous one; they are kept.
    """
    frames = whole.frames[segment.start : segment.end]
    keep = whole.keep[segment.start : segment.end]
    for offset, frame in enumerate(carried):
        frames[offset], keep[offset] = frame, True
    if all(frame is None for frame in frames):
        return None
    first = next(frame for frame in frames if frame is not None)
    height, width = first.shape[:2]
    grey = Image.new("RGB", (width, height), (GREY, GREY, GREY))
    kept = Image.new("L", (width, height), 0)
    free = Image.new("L", (width, height), 255)
    video = [grey if frame is None else Image.fromarray(frame) for frame in frames]
    mask = [kept if flag else free for flag in keep]
    return video, mask


def _load(request: EngineRequest, index: int, size: tuple[int, int]) -> RGBFrame:
    try:
        return load_image(request.images[index].path, draft_size=size)
    except ReferenceInvalid as error:
        raise ReferenceInvalid(f"@Image{index + 1}: {error.message}") from error
