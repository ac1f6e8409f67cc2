"""The largest references the server accepts, made quickly: for memory tests.

`make_big_png` writes a picture of up to 50 megapixels that compresses to a few hundred
kilobytes (smooth gradients and a few flat shapes), and `make_big_video` an H.264 clip of
up to 4096 pixels a side, encoded from YUV planes drawn directly so that neither making
nor encoding it needs a full-size RGB frame.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image


def big_picture(width: int, height: int, seed: int = 0) -> NDArray[np.uint8]:
    """An RGB picture of smooth gradients with a few flat shapes and a bright disc."""
    rng = np.random.default_rng(seed)
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[..., 0] = np.linspace(0, 255, width, dtype=np.float32).astype(np.uint8)[None, :]
    canvas[..., 1] = np.linspace(40, 220, height, dtype=np.float32).astype(np.uint8)[:, None]
    canvas[..., 2] = int(rng.integers(60, 200))
    unit = min(width, height) // 8
    for _ in range(8):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        cv2.rectangle(canvas, (x, y), (x + unit, y + unit // 2), colour, -1)
    cv2.circle(canvas, (width // 3, height // 2), unit, (255, 250, 240), -1)
    return canvas


def make_big_png(path: Path, width: int, height: int, seed: int = 0) -> Path:
    """Write `big_picture` as a fast-compressed PNG and return its path."""
    Image.fromarray(big_picture(width, height, seed)).save(path, format="PNG", compress_level=1)
    return path


def make_big_video(
    path: Path, width: int, height: int, seconds: float = 1.0, fps: int = 24, seed: int = 0
) -> Path:
    """Write a silent H.264 yuv420p clip (libx264 ultrafast) whose picture pans right."""
    rng = np.random.default_rng(seed)
    xs = np.arange(width, dtype=np.int32)[None, :]
    ys = np.arange(height, dtype=np.int32)[:, None]
    # Diagonal stripes with a period of 256 pixels: structure everywhere, cheap to encode.
    luma = ((xs + ys) % 256 * 0.6 + 40).astype(np.uint8)
    chroma = np.full((height // 2, width), int(rng.integers(90, 170)), dtype=np.uint8)
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "30"}
        for index in range(round(seconds * fps)):
            planes = np.concatenate([np.roll(luma, index * 8, axis=1), chroma])
            frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode())
    return path
