"""Where a picture's subject is: its most salient region, found from the pixels alone.

Two classic measures, each a few FFTs or filters on a thumbnail, with no model: the
spectral residual (Hou and Zhang, 2007), which finds what breaks the picture's statistical
regularity (a detailed object on a plain ground), and colour contrast against the
picture's mean colour in Lab (Achanta et al., 2009), which finds what stands out in
colour even where it is smooth. Their sum is smoothed, and the subject is the
saliency-weighted centre of the connected region around its peak.

A picture where nothing stands out (a texture, a busy pattern, an even gradient) has no
subject: the region around its peak is not much more salient than the rest, or is most
of the picture, and the camera keeps its own framing.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from r2v.media.fit import plan_fit

THUMBNAIL = 64
"""The long side of the thumbnail saliency is measured on (pixels): the spectral
residual's authors found this scale best for objects a viewer notices."""
STANDS_OUT = 2.0
"""How many times as salient as the rest of the picture, on average, its subject is."""
_REGION = 0.5  # the subject's region: around the peak, down to this share of it
_MOST = 0.6  # a region over this share of the picture is no subject: everything stands out


def thumbnail_size(shape: tuple[int, int]) -> tuple[int, int]:
    """The thumbnail of a frame of `shape` (width, height)."""
    scale = THUMBNAIL / max(shape)
    return (max(8, round(shape[0] * scale)), max(8, round(shape[1] * scale)))


def subject_point(picture: NDArray[np.uint8], shape: tuple[int, int]) -> tuple[float, float] | None:
    """The centre of `picture`'s subject once fitted to a frame of `shape`'s aspect (width,
    height), as offsets from the frame's centre in fractions of its width and height
    (right and down positive); None when nothing stands out.

    Only what the frame shows of the picture is measured (the part a crop keeps, or the
    whole picture in its box when it is padded): the padding's blurred backdrop and its
    edges would otherwise stand out more than any subject."""
    plan = plan_fit((picture.shape[1], picture.shape[0]), shape)
    sx, sy, sw, sh = plan.source_box
    tx, ty, tw, th = plan.target_box
    shown = np.ascontiguousarray(picture[sy : sy + sh, sx : sx + sw, :3])
    thumbnail = cv2.resize(shown, thumbnail_size((tw, th)), interpolation=cv2.INTER_AREA)
    found = _subject(np.asarray(thumbnail, dtype=np.uint8))
    if found is None:
        return None
    x, y = (tx + found[0] * tw) / shape[0], (ty + found[1] * th) / shape[1]
    # Rounded, so that floating-point differences between machines cannot move a frame.
    return (round(x - 0.5, 4), round(y - 0.5, 4))


def _subject(thumbnail: NDArray[np.uint8]) -> tuple[float, float] | None:
    """The subject's centre in a thumbnail, in fractions of its width and height."""
    saliency = saliency_map(thumbnail)
    at = np.unravel_index(int(np.argmax(saliency)), saliency.shape)
    above = (saliency >= _REGION * float(saliency[at])).astype(np.uint8)
    _, labels = cv2.connectedComponents(above)
    region = labels == labels[at]
    if region.mean() > _MOST:
        return None
    if float(saliency[region].mean()) < STANDS_OUT * float(saliency[~region].mean()):
        return None
    weights = np.where(region, saliency, 0.0)
    height, width = saliency.shape
    ys, xs = np.mgrid[0:height, 0:width]
    total = float(weights.sum())
    return (
        float((weights * (xs + 0.5)).sum()) / total / width,
        float((weights * (ys + 0.5)).sum()) / total / height,
    )


def saliency_map(thumbnail: NDArray[np.uint8]) -> NDArray[np.float32]:
    """The spectral residual and the colour contrast of an RGB thumbnail, each scaled to
    a peak of 1, summed and smoothed."""
    width = thumbnail.shape[1]
    grey = cv2.cvtColor(thumbnail, cv2.COLOR_RGB2GRAY).astype(np.float64) / 255.0
    spectrum = np.fft.fft2(grey)
    log_amplitude = np.log(np.abs(spectrum) + 1e-9)
    residual = log_amplitude - cv2.blur(log_amplitude, (3, 3), borderType=cv2.BORDER_REFLECT)
    unusual = (np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2).astype(
        np.float32
    )
    lab = cv2.cvtColor(thumbnail, cv2.COLOR_RGB2LAB).astype(np.float32)
    smooth = cv2.GaussianBlur(lab, (0, 0), 1.0)
    contrast = np.sqrt(((smooth - lab.reshape(-1, 3).mean(axis=0)) ** 2).sum(axis=2))
    total = np.zeros(grey.shape, dtype=np.float32)
    for part in (unusual, contrast):
        smooth_part = np.asarray(cv2.GaussianBlur(part, (0, 0), width / 24), dtype=np.float32)
        total += smooth_part / max(float(smooth_part.max()), 1e-9)
    return cv2.GaussianBlur(total, (0, 0), width / 32)  # type: ignore[return-value]
