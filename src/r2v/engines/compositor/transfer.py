"""Motion transfer: the global camera motion of a reference video, replayed over a still.

`estimate_camera` follows the video's camera: on small greyscale frames it tracks corner
features from frame to frame (pyramidal Lucas-Kanade, checked forwards and backwards),
fits a similarity transform (shift, zoom, turn) to them with RANSAC so that subjects moving
on their own are outvoted by the background, and chains the transforms into a
`CameraTrack`: where the camera looks, and how close, relative to the first frame. Frames
too flat to track fall back to phase correlation, which sees the shift alone.

`transferred_path` fits such a track onto a picture's plate: the same pan, tilt and zoom, at
their full size wherever the picture has the margin for them (zooming in as tight as
`MOVE_LIMIT`), scaled down only as much as its margins demand. A pinned first (last) frame
is the whole picture: the path starts there, zooms in to where the track begins (when the
track needs margin to pan), then replays it (and the reverse at a pinned last frame).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from r2v.engines.compositor.motion import (
    Camera,
    MotionPath,
    move_limit,
    onto,
    path_keys,
    with_ends,
)
from r2v.media.decode import grey_frames

ANALYSIS_SIDE = 320
"""Pixels on the longer side of the frames the camera is tracked on."""
ANALYSIS_RATE = 12.0
"""Frames a second analysed: camera moves are smooth, so more would only cost time."""
CHECKPOINT_FRAMES = 12

_MIN_FEATURES = 12
_SMOOTHING = 1.5  # Gaussian sigma, in analysed frames: tracking noise out, moves kept
_EDGE = 1e-3  # plate share kept clear of the picture's edges, so no reflection shows
_SEARCH_STEPS = 24  # bisection steps for the gain and the starting zoom
_LK_STOP = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)

Affine = NDArray[np.float64]


@dataclass(frozen=True)
class CameraTrack:
    """Where a video's camera looks over time, relative to its first frame.

    `x` and `y` are the view centre's offset as fractions of the frame's width and height
    (right and down positive: a camera panning right has a rising `x`); `zoom` above 1 is
    closer than at the start.
    """

    times: tuple[float, ...]
    x: tuple[float, ...]
    y: tuple[float, ...]
    zoom: tuple[float, ...]


STILL = CameraTrack((0.0, 1.0), (0.0, 0.0), (0.0, 0.0), (1.0, 1.0))


def estimate_camera(
    path: Path, *, max_seconds: float = 15.0, checkpoint: Callable[[], None] = lambda: None
) -> CameraTrack:
    """Estimate the camera motion of the video at `path` (a few hundred ms for 15 s of
    small video; decoding dominates for large ones). `checkpoint` is called every
    `CHECKPOINT_FRAMES` analysed frames: it may raise to stop."""
    times: list[float] = []
    centres: list[tuple[float, float, float]] = []
    chain = np.eye(3)
    previous: NDArray[np.uint8] | None = None
    size = (1, 1)
    for seconds, frame in grey_frames(
        path, ANALYSIS_SIDE, rate=ANALYSIS_RATE, max_seconds=max_seconds
    ):
        if previous is not None and frame.shape == previous.shape:
            step = np.vstack([pair_motion(previous, frame), [0.0, 0.0, 1.0]])
            chain = step @ chain  # first-frame coordinates to this frame's
        size = (frame.shape[1], frame.shape[0])
        if len(times) % CHECKPOINT_FRAMES == 0:
            checkpoint()
        times.append(seconds)
        centres.append(_view(chain, size))
        previous = frame
    if len(times) < 2:
        return STILL
    data = np.asarray(centres, dtype=np.float64)
    xs, ys = _smooth(data[:, 0]), _smooth(data[:, 1])
    zooms = np.exp(_smooth(np.log(data[:, 2])))
    return CameraTrack(
        tuple(float(t) for t in times),
        tuple(float(v) for v in xs),
        tuple(float(v) for v in ys),
        tuple(float(v) for v in zooms),
    )


def pair_motion(previous: NDArray[np.uint8], current: NDArray[np.uint8]) -> Affine:
    """The 2x3 similarity transform taking `previous`'s content to where it is in `current`."""
    points = cv2.goodFeaturesToTrack(
        previous, maxCorners=300, qualityLevel=0.01, minDistance=6, blockSize=7
    )
    if points is not None and len(points) >= _MIN_FEATURES:
        moved, found, _ = cv2.calcOpticalFlowPyrLK(
            previous,
            current,
            points,
            points.copy(),
            winSize=(21, 21),
            maxLevel=3,
            criteria=_LK_STOP,
        )
        back, returned, _ = cv2.calcOpticalFlowPyrLK(
            current, previous, moved, moved.copy(), winSize=(21, 21), maxLevel=3, criteria=_LK_STOP
        )
        error = np.linalg.norm((back - points).reshape(-1, 2), axis=1)
        good = (found.ravel() == 1) & (returned.ravel() == 1) & (error < 1.0)
        if int(good.sum()) >= _MIN_FEATURES:
            matrix, _ = cv2.estimateAffinePartial2D(
                points[good],
                moved[good],
                method=cv2.RANSAC,
                ransacReprojThreshold=1.0,
                maxIters=1000,
                confidence=0.995,
            )
            if matrix is not None:
                return np.asarray(matrix, dtype=np.float64)
    return _phase_shift(previous, current)


def _phase_shift(previous: NDArray[np.uint8], current: NDArray[np.uint8]) -> Affine:
    window = cv2.createHanningWindow((previous.shape[1], previous.shape[0]), cv2.CV_32F)
    (dx, dy), response = cv2.phaseCorrelate(
        previous.astype(np.float32), current.astype(np.float32), window
    )
    if response < 0.05:  # no agreement at all: assume the camera held still
        dx = dy = 0.0
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], dtype=np.float64)


def _view(chain: Affine, size: tuple[int, int]) -> tuple[float, float, float]:
    """Where the current view's centre lies in first-frame coordinates, and its zoom."""
    width, height = size
    inverse = np.linalg.inv(chain)
    cx, cy, _ = inverse @ np.array([width / 2, height / 2, 1.0])
    zoom = float(np.sqrt(abs(np.linalg.det(chain[:2, :2]))))
    return ((cx - width / 2) / width, (cy - height / 2) / height, max(zoom, 1e-3))


def _smooth(values: NDArray[np.float64]) -> NDArray[np.float64]:
    radius = int(3 * _SMOOTHING)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / _SMOOTHING) ** 2)
    # Odd reflection continues a move past the ends, so smoothing does not shorten it.
    padded = np.pad(values, radius, mode="reflect", reflect_type="odd")
    return np.convolve(padded, taps / taps.sum(), mode="valid")


def transferred_path(
    track: CameraTrack,
    *,
    seconds: float = 5.0,
    from_rest: bool = False,
    to_rest: bool = False,
    cover: float = 1.0,
) -> MotionPath:
    """The track's moves as a camera path over a plate, resampled over a shot of `seconds`.

    `from_rest` / `to_rest`: the shot starts (ends) on the whole picture, exactly. `cover`
    (see `motion.cover_share`) keeps the moves inside a padded picture's own area.
    """
    span = np.linspace(track.times[0], track.times[-1], path_keys(seconds))
    xs = np.interp(span, track.times, track.x)
    ys = np.interp(span, track.times, track.y)
    zooms = np.log(np.interp(span, track.times, track.zoom))
    xs, ys, zooms = xs - xs[0], ys - ys[0], zooms - zooms[0]
    keys = _fit(xs, ys, zooms, move_limit(cover))
    move = MotionPath("transfer", tuple(onto(key, cover) for key in keys), keyed=True)
    return with_ends(move, seconds, from_rest=from_rest, to_rest=to_rest)


def _fit(
    xs: NDArray[np.float64], ys: NDArray[np.float64], zooms: NDArray[np.float64], limit: float
) -> tuple[Camera, ...]:
    """Keys replaying the largest share (ideally all) of the track's moves that keeps every
    framing inside the picture and no tighter than `limit`, from the loosest starting zoom."""
    gain, low, high = 1.0, 0.0, 1.0
    if _place(xs, ys, zooms, 1.0, limit) is None:
        for _ in range(_SEARCH_STEPS):
            gain = (low + high) / 2
            low, high = (gain, high) if _place(xs, ys, zooms, gain, limit) else (low, gain)
        gain = low
    return _place(xs, ys, zooms, gain, limit) or (Camera(1.0), Camera(1.0))


def _place(
    xs: NDArray[np.float64],
    ys: NDArray[np.float64],
    zooms: NDArray[np.float64],
    gain: float,
    limit: float,
) -> tuple[Camera, ...] | None:
    """The track's moves times `gain` from the loosest starting zoom that fits, if any."""
    lowest = max(1.0, math.exp(-gain * float(zooms.min())))
    highest = limit * math.exp(-gain * float(zooms.max()))
    if lowest > highest + 1e-9 or _offsets(xs, ys, zooms, gain, highest) is None:
        return None
    start = highest
    if _offsets(xs, ys, zooms, gain, lowest) is not None:
        start = lowest
    else:  # more margin with every step closer: the loosest start that fits lies between
        low, high = lowest, highest
        for _ in range(_SEARCH_STEPS):
            middle = (low + high) / 2
            low, high = (low, middle) if _offsets(xs, ys, zooms, gain, middle) else (middle, high)
        start = high
    placed = _offsets(xs, ys, zooms, gain, start)
    if placed is None:
        return None
    zoom, x, y = placed
    return tuple(Camera(float(z), float(a), float(b)) for z, a, b in zip(zoom, x, y, strict=True))


def _offsets(
    xs: NDArray[np.float64],
    ys: NDArray[np.float64],
    zooms: NDArray[np.float64],
    gain: float,
    start: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]] | None:
    """Each key's zoom and centre when the track starts at zoom `start`, or None if some
    framing would leave the picture."""
    zoom = start * np.exp(zooms * gain)
    margin = np.maximum((1.0 - 1.0 / zoom) / 2 - _EDGE, 0.0)
    # The view at the first frame spans 1/start of the plate; the track's offsets are in
    # units of that view, so they shrink by `start` on the plate.
    dx, dy = xs * gain / start, ys * gain / start
    x0, y0 = _centre(dx, margin), _centre(dy, margin)
    if x0 is None or y0 is None:
        return None
    return zoom, x0 + dx, y0 + dy


def _centre(offsets: NDArray[np.float64], margin: NDArray[np.float64]) -> float | None:
    """The starting offset closest to the middle that keeps every `offsets` within `margin`."""
    low = float(np.max(-margin - offsets))
    high = float(np.min(margin - offsets))
    if low > high + 1e-12:
        return None
    return min(max(0.0, low), high)
