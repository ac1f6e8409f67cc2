"""Fitting a picture into an exact output size by crop or pad, never by stretching.

When the picture's aspect ratio is close to the output's, it is scaled to cover the frame
and the overflow is cropped evenly. When they are far apart (a panorama into a portrait
frame), cropping would lose the subject, so the whole picture is contained and the bars are
filled with a blurred, darkened enlargement of the same picture, as phones show a portrait
clip in a landscape player.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

RGBFrame = NDArray[np.uint8]

FitMode = Literal["crop", "pad"]

MAX_CROP_SHARE = 0.25
"""Crop when at most this share of the picture's width or height would be cut away, else pad.

A 4:3 picture in a 16:9 frame loses exactly 25% of its height and is still cropped; a square
picture in a 16:9 frame would lose 44% and is padded instead.
"""

_BACKDROP_SHRINK = 16
_BACKDROP_DIM = 0.45


@dataclass(frozen=True)
class FitPlan:
    """How a width x height picture lands in the output: a source crop and a destination box.

    The crop `(x, y, w, h)` of the source is scaled to the box `(x, y, w, h)` of the
    output. In crop mode the box is the whole output; in pad mode the crop is the whole
    source and the box is centred, with the backdrop around it.
    """

    mode: FitMode
    source_box: tuple[int, int, int, int]
    target_box: tuple[int, int, int, int]
    output: tuple[int, int]


def plan_fit(
    source: tuple[int, int], output: tuple[int, int], *, max_crop: float = MAX_CROP_SHARE
) -> FitPlan:
    """Choose crop or pad for a `source` (width, height) in an `output` (width, height)."""
    sw, sh = source
    ow, oh = output
    if sw <= 0 or sh <= 0 or ow <= 0 or oh <= 0:
        raise ValueError(f"cannot fit {sw}x{sh} into {ow}x{oh}")
    source_ratio, output_ratio = sw / sh, ow / oh
    lost = 1.0 - min(source_ratio, output_ratio) / max(source_ratio, output_ratio)
    if lost <= max_crop + 1e-9:
        if source_ratio > output_ratio:  # too wide: cut the sides
            cw = max(1, min(sw, round(sh * output_ratio)))
            box = ((sw - cw) // 2, 0, cw, sh)
        else:  # too tall: cut top and bottom
            ch = max(1, min(sh, round(sw / output_ratio)))
            box = (0, (sh - ch) // 2, sw, ch)
        return FitPlan("crop", box, (0, 0, ow, oh), output)
    if source_ratio > output_ratio:
        bw, bh = ow, max(2, min(oh, round(ow / source_ratio)))
    else:
        bw, bh = max(2, min(ow, round(oh * source_ratio))), oh
    target = ((ow - bw) // 2, (oh - bh) // 2, bw, bh)
    return FitPlan("pad", (0, 0, sw, sh), target, output)


def fit_scale(
    source: tuple[int, int], output: tuple[int, int], *, max_crop: float = MAX_CROP_SHARE
) -> float:
    """The scale at which a `source` (width, height) picture is drawn when fitted into
    `output`: a picture shrunk by up to this much before fitting loses no detail."""
    plan = plan_fit(source, output, max_crop=max_crop)
    _, _, sw, sh = plan.source_box
    _, _, tw, th = plan.target_box
    return max(tw / sw, th / sh)


def resize(image: RGBFrame, size: tuple[int, int], *, interpolation: int | None = None) -> RGBFrame:
    """Resize to (width, height): INTER_AREA when shrinking, else `interpolation` or linear."""
    height, width = image.shape[:2]
    if (width, height) == size:
        return image
    if size[0] <= width and size[1] <= height:
        interpolation = cv2.INTER_AREA
    elif interpolation is None:
        interpolation = cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interpolation)  # type: ignore[return-value]


def apply_fit(image: RGBFrame, plan: FitPlan, *, interpolation: int | None = None) -> RGBFrame:
    """Draw `image` into a new frame of the plan's output size."""
    sx, sy, sw, sh = plan.source_box
    tx, ty, tw, th = plan.target_box
    picture = resize(image[sy : sy + sh, sx : sx + sw], (tw, th), interpolation=interpolation)
    if plan.mode == "crop":
        return np.ascontiguousarray(picture)
    frame = backdrop(image, plan.output)
    frame[ty : ty + th, tx : tx + tw] = picture
    return frame


def fit_frame(
    image: RGBFrame,
    size: tuple[int, int],
    *,
    max_crop: float = MAX_CROP_SHARE,
    interpolation: int | None = None,
) -> RGBFrame:
    """`image` fitted into exactly `size` (width, height) by crop or pad."""
    plan = plan_fit((image.shape[1], image.shape[0]), size, max_crop=max_crop)
    return apply_fit(image, plan, interpolation=interpolation)


def backdrop(image: RGBFrame, size: tuple[int, int]) -> RGBFrame:
    """A blurred, darkened enlargement of `image` covering `size`, for the bars of a pad.

    Everything happens at a sixteenth of the output's size, then one linear upscale, so the
    cost is a small fraction of a frame's.
    """
    ow, oh = size
    small = (max(2, ow // _BACKDROP_SHRINK), max(2, oh // _BACKDROP_SHRINK))
    cover = plan_fit((image.shape[1], image.shape[0]), small, max_crop=1.0)
    sx, sy, sw, sh = cover.source_box
    tiny = cv2.resize(image[sy : sy + sh, sx : sx + sw], small, interpolation=cv2.INTER_AREA)
    blurred = cv2.GaussianBlur(tiny, (0, 0), sigmaX=max(1.0, small[0] / 24))
    dimmed = cv2.convertScaleAbs(blurred, alpha=_BACKDROP_DIM)
    return cv2.resize(dimmed, size, interpolation=cv2.INTER_LINEAR)  # type: ignore[return-value]
